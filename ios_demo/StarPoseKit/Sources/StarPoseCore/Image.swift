import Foundation

/// Memory order of a model's image input.
public enum Layout: String, CaseIterable {
    case nhwc = "NHWC"
    case nchw = "NCHW"
}

/// An 8-bit RGB image viewed through strides over borrowed bytes, so that camera buffers are used
/// as they come: a locked BGRA `CVPixelBuffer` is `pixelStride: 4, rowStride: bytesPerRow,
/// channelOffsets: (2, 1, 0)`. The bytes must outlive the value (lock/unlock around its use).
public struct RgbImage {
    public let width: Int
    public let height: Int
    public let bytes: UnsafeRawBufferPointer
    public let pixelStride: Int
    public let rowStride: Int
    public let channelOffsets: (Int, Int, Int)

    public init(width: Int, height: Int, bytes: UnsafeRawBufferPointer, pixelStride: Int = 3, rowStride: Int? = nil, channelOffsets: (Int, Int, Int) = (0, 1, 2)) throws {
        let stride = rowStride ?? width * pixelStride
        guard width > 0, height > 0 else { throw PoseError.invalidArgument("image size must be positive, got \(width)x\(height)") }
        guard pixelStride >= 3, stride >= width * pixelStride else { throw PoseError.invalidArgument("bad strides \(pixelStride)/\(stride) for width \(width)") }
        guard bytes.count >= (height - 1) * stride + width * pixelStride else {
            throw PoseError.invalidArgument("buffer of \(bytes.count) bytes is too small for \(width)x\(height) with row stride \(stride)")
        }
        self.width = width
        self.height = height
        self.bytes = bytes
        self.pixelStride = pixelStride
        self.rowStride = stride
        self.channelOffsets = channelOffsets
    }
}

/// Bilinear affine crop, the port of `top_down_affine` (OpenCV `warpAffine`, INTER_LINEAR,
/// constant black border): output pixel (x, y) samples the source at `imageToCrop⁻¹ (x, y)`,
/// integer coordinates at pixel centres, neighbours outside the image count as 0. Output is uint8
/// RGB in `layout`. OpenCV rounds sampling positions to 1/32 pixel, so results may differ from it
/// by one level (the golden tolerance).
public func warpAffineBilinear(_ src: RgbImage, imageToCrop: Affine, outputWidth: Int, outputHeight: Int, layout: Layout = .nhwc) throws -> [UInt8] {
    let inv = try imageToCrop.inverse()
    let plane = outputWidth * outputHeight
    var out = [UInt8](repeating: 0, count: plane * 3)
    let (o0, o1, o2) = src.channelOffsets
    let w = src.width
    let h = src.height
    out.withUnsafeMutableBufferPointer { dst in
        for y in 0..<outputHeight {
            for x in 0..<outputWidth {
                let sx = inv.a * Double(x) + inv.b * Double(y) + inv.c
                let sy = inv.d * Double(x) + inv.e * Double(y) + inv.f
                let fx0 = sx.rounded(.down)
                let fy0 = sy.rounded(.down)
                let fx = sx - fx0
                let fy = sy - fy0
                guard fx0.isFinite, fy0.isFinite, abs(fx0) < 1e9, abs(fy0) < 1e9 else { continue }
                let x0 = Int(fx0)
                let y0 = Int(fy0)
                var v = (0.0, 0.0, 0.0)
                @inline(__always) func accumulate(_ xi: Int, _ yi: Int, _ wt: Double) {
                    if wt == 0 || xi < 0 || yi < 0 || xi >= w || yi >= h { return }
                    let base = yi * src.rowStride + xi * src.pixelStride
                    v.0 += wt * Double(src.bytes[base + o0])
                    v.1 += wt * Double(src.bytes[base + o1])
                    v.2 += wt * Double(src.bytes[base + o2])
                }
                accumulate(x0, y0, (1 - fx) * (1 - fy))
                accumulate(x0 + 1, y0, fx * (1 - fy))
                accumulate(x0, y0 + 1, (1 - fx) * fy)
                accumulate(x0 + 1, y0 + 1, fx * fy)
                @inline(__always) func quantize(_ value: Double) -> UInt8 {
                    UInt8(min(max((value + 0.5).rounded(.down), 0), 255))
                }
                let q = (quantize(v.0), quantize(v.1), quantize(v.2))
                if layout == .nhwc {
                    let k = (y * outputWidth + x) * 3
                    dst[k] = q.0
                    dst[k + 1] = q.1
                    dst[k + 2] = q.2
                } else {
                    let k = y * outputWidth + x
                    dst[k] = q.0
                    dst[plane + k] = q.1
                    dst[2 * plane + k] = q.2
                }
            }
        }
    }
    return out
}

/// uint8 RGB crop → float `(x - mean) / std` per channel in float32 arithmetic like
/// `normalize_image`; only for artifacts whose metadata says `normalization: external`.
public func normalizeImage(_ rgb: [UInt8], width: Int, height: Int, mean: [Double], std: [Double], inputLayout: Layout = .nhwc, outputLayout: Layout = .nchw) -> [Float] {
    let plane = width * height
    var out = [Float](repeating: 0, count: plane * 3)
    let m = mean.map { Float($0) }
    let s = std.map { Float($0) }
    for p in 0..<plane {
        for ch in 0..<3 {
            let srcIndex = inputLayout == .nhwc ? p * 3 + ch : ch * plane + p
            let dstIndex = outputLayout == .nhwc ? p * 3 + ch : ch * plane + p
            out[dstIndex] = (Float(rgb[srcIndex]) - m[ch]) / s[ch]
        }
    }
    return out
}
