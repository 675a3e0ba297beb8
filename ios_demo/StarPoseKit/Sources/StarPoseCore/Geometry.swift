import Foundation

// Boxes, centre/scale and 2x3 affine matrices: a line-by-line port of starpose/processing.py
// (bbox_xywh_to_cs, fix_aspect_ratio, get_warp_matrix, invert_affine, apply_affine), the same as
// android_demo/core's Geometry.kt. Everything is Double, as in the numpy reference.

public enum PoseError: Error, CustomStringConvertible {
    case singularMatrix
    case invalidArgument(String)

    public var description: String {
        switch self {
        case .singularMatrix: return "affine matrix is singular"
        case let .invalidArgument(message): return message
        }
    }
}

/// A box `(x, y, w, h)` in image pixels.
public struct Box: Equatable {
    public var x: Double
    public var y: Double
    public var w: Double
    public var h: Double

    public init(x: Double, y: Double, w: Double, h: Double) {
        self.x = x
        self.y = y
        self.w = w
        self.h = h
    }

    public init(_ v: [Double]) {
        self.init(x: v[0], y: v[1], w: v[2], h: v[3])
    }

    /// Box from corners `(x1, y1, x2, y2)`.
    public static func fromXyxy(_ x1: Double, _ y1: Double, _ x2: Double, _ y2: Double) -> Box {
        Box(x: x1, y: y1, w: x2 - x1, h: y2 - y1)
    }

    public var array: [Double] { [x, y, w, h] }
}

/// The person region as MMPose describes it: box centre and padded, aspect-fixed box size.
public struct CenterScale: Equatable {
    public var cx: Double
    public var cy: Double
    public var sw: Double
    public var sh: Double

    public init(cx: Double, cy: Double, sw: Double, sh: Double) {
        self.cx = cx
        self.cy = cy
        self.sw = sw
        self.sh = sh
    }

    public var array: [Double] { [cx, cy, sw, sh] }
}

/// Grow the shorter side of `(w, h)` so that `w / h == aspectRatio`.
public func fixAspectRatio(_ w: Double, _ h: Double, aspectRatio: Double) -> (Double, Double) {
    w > h * aspectRatio ? (w, w / aspectRatio) : (h * aspectRatio, h)
}

/// Box → centre/scale; the scale is the box size times `padding`, widened to the model's aspect
/// ratio `inputWidth / inputHeight` when those are given (MMPose's TopdownAffine).
public func bboxXywhToCs(_ box: Box, inputWidth: Int? = nil, inputHeight: Int? = nil, padding: Double = 1.25) -> CenterScale {
    let cx = box.x + box.w * 0.5
    let cy = box.y + box.h * 0.5
    var sw = box.w * padding
    var sh = box.h * padding
    if let iw = inputWidth, let ih = inputHeight {
        (sw, sh) = fixAspectRatio(sw, sh, aspectRatio: Double(iw) / Double(ih))
    }
    return CenterScale(cx: cx, cy: cy, sw: sw, sh: sh)
}

/// Corner box `(x1, y1, x2, y2)` → centre/scale.
public func bboxXyxyToCs(_ x1: Double, _ y1: Double, _ x2: Double, _ y2: Double, inputWidth: Int? = nil, inputHeight: Int? = nil, padding: Double = 1.25) -> CenterScale {
    bboxXywhToCs(Box.fromXyxy(x1, y1, x2, y2), inputWidth: inputWidth, inputHeight: inputHeight, padding: padding)
}

/// A 2x3 affine `[a b c; d e f]` acting on column vectors `[x, y, 1]`.
public struct Affine: Equatable {
    public var a: Double
    public var b: Double
    public var c: Double
    public var d: Double
    public var e: Double
    public var f: Double

    public init(a: Double, b: Double, c: Double, d: Double, e: Double, f: Double) {
        self.a = a
        self.b = b
        self.c = c
        self.d = d
        self.e = e
        self.f = f
    }

    /// From row-major `[a, b, c, d, e, f]`.
    public init(_ rowMajor: [Double]) throws {
        guard rowMajor.count == 6 else { throw PoseError.invalidArgument("a 2x3 affine needs 6 values, got \(rowMajor.count)") }
        self.init(a: rowMajor[0], b: rowMajor[1], c: rowMajor[2], d: rowMajor[3], e: rowMajor[4], f: rowMajor[5])
    }

    public static let identity = Affine(a: 1, b: 0, c: 0, d: 0, e: 1, f: 0)

    @inline(__always) public func mapX(_ x: Double, _ y: Double) -> Double { a * x + b * y + c }

    @inline(__always) public func mapY(_ x: Double, _ y: Double) -> Double { d * x + e * y + f }

    /// Map interleaved points `[x0, y0, x1, y1, ...]`.
    public func apply(_ points: [Double]) -> [Double] {
        var out = [Double](repeating: 0, count: points.count)
        for k in 0..<(points.count / 2) {
            let x = points[2 * k]
            let y = points[2 * k + 1]
            out[2 * k] = mapX(x, y)
            out[2 * k + 1] = mapY(x, y)
        }
        return out
    }

    /// Inverse map; throws for a singular matrix (a zero-size box).
    public func inverse() throws -> Affine {
        let det = a * e - b * d
        guard det != 0, det.isFinite else { throw PoseError.singularMatrix }
        let ia = e / det
        let ib = -b / det
        let id = -d / det
        let ie = a / det
        return Affine(a: ia, b: ib, c: -(ia * c + ib * f), d: id, e: ie, f: -(id * c + ie * f))
    }

    /// `other ∘ self`: first this map, then `other`.
    public func then(_ other: Affine) -> Affine {
        Affine(
            a: other.a * a + other.b * d, b: other.a * b + other.b * e, c: other.a * c + other.b * f + other.c,
            d: other.d * a + other.e * d, e: other.d * b + other.e * e, f: other.d * c + other.e * f + other.f
        )
    }

    /// Row-major `[a, b, c, d, e, f]`, the layout of a `(1, 2, 3)` model input.
    public var array: [Double] { [a, b, c, d, e, f] }

    /// Image → view map of a frame scaled to fill a view and centre-cropped (SwiftUI aspectFill,
    /// AVCaptureVideoPreviewLayer .resizeAspectFill); `mirror` flips horizontally (front camera).
    public static func fillCenter(imageWidth: Double, imageHeight: Double, viewWidth: Double, viewHeight: Double, mirror: Bool = false) -> Affine {
        let s = max(viewWidth / imageWidth, viewHeight / imageHeight)
        let dx = (viewWidth - imageWidth * s) / 2.0
        let dy = (viewHeight - imageHeight * s) / 2.0
        return mirror ? Affine(a: -s, b: 0, c: viewWidth - dx, d: 0, e: s, f: dy) : Affine(a: s, b: 0, c: dx, d: 0, e: s, f: dy)
    }
}

/// The 2x3 map from the box (centre, scale; rotated by `rotation` degrees) onto an
/// `outputWidth x outputHeight` crop, or with `inverse` the crop → image map (`get_warp_matrix`).
public func getWarpMatrix(_ cs: CenterScale, rotation: Double, outputWidth: Int, outputHeight: Int, inverse: Bool = false) throws -> Affine {
    let s = Double(outputWidth) / cs.sw
    let theta = rotation * (Double.pi / 180.0)
    let c = cos(theta)
    let sn = sin(theta)
    let a00 = c * s
    let a01 = sn * s
    let a10 = -sn * s
    let a11 = c * s
    let tx = Double(outputWidth) * 0.5 - (a00 * cs.cx + a01 * cs.cy)
    let ty = Double(outputHeight) * 0.5 - (a10 * cs.cx + a11 * cs.cy)
    let m = Affine(a: a00, b: a01, c: tx, d: a10, e: a11, f: ty)
    return inverse ? try m.inverse() : m
}
