import Foundation

// Port of starpose/detect/spec.py and starpose/detect/processing.py (and android_demo/core's
// Detector.kt): the bundled person detector's contract and its post-processing, operation by
// operation, checked against tests/golden/detector.json.

/// `DetectorSpec`: input size (w, h), normalization, strides, box distribution, NMS settings.
public struct DetectorSpec: Equatable {
    public var inputWidth: Int
    public var inputHeight: Int
    public var mean: [Double]
    public var std: [Double]
    public var strides: [Int]
    public var regMax: Int
    public var padValue: Int
    public var scoreThreshold: Double
    public var iouThreshold: Double
    public var maxDetections: Int

    public init(inputWidth: Int = 160, inputHeight: Int = 224, mean: [Double] = [123.675, 116.28, 103.53],
                std: [Double] = [58.395, 57.12, 57.375], strides: [Int] = [8, 16, 32], regMax: Int = 10, padValue: Int = 0,
                scoreThreshold: Double = 0.2, iouThreshold: Double = 0.6, maxDetections: Int = 10) throws {
        guard let big = strides.max() else { throw MetadataError("detector spec has no strides") }
        guard inputWidth > 0, inputHeight > 0, inputWidth % big == 0, inputHeight % big == 0 else {
            throw MetadataError("detector input_size [\(inputWidth), \(inputHeight)] must be positive multiples of \(big)")
        }
        guard maxDetections >= 1 else { throw MetadataError("detector max_detections must be >= 1, got \(maxDetections)") }
        self.inputWidth = inputWidth
        self.inputHeight = inputHeight
        self.mean = mean
        self.std = std
        self.strides = strides
        self.regMax = regMax
        self.padValue = padValue
        self.scoreThreshold = scoreThreshold
        self.iouThreshold = iouThreshold
        self.maxDetections = maxDetections
    }

    public var numBins: Int { regMax + 1 }
    public var numAnchors: Int { strides.reduce(0) { $0 + (inputWidth / $1) * (inputHeight / $1) } }

    /// From the `detector_spec` object of a detector's metadata (or the golden fixture).
    public static func fromJSON(_ node: JSONNode) throws -> DetectorSpec {
        let size = try node["input_size"].ints()
        guard size.count == 2 else { throw try node["input_size"].fail("must be [width, height]") }
        return try DetectorSpec(
            inputWidth: size[0], inputHeight: size[1], mean: try node["mean"].doubles(), std: try node["std"].doubles(),
            strides: try node["strides"].ints(), regMax: try node["reg_max"].int(), padValue: try node["pad_value"].int(),
            scoreThreshold: try node["score_threshold"].double(), iouThreshold: try node["iou_threshold"].double(),
            maxDetections: try node["max_detections"].int())
    }
}

/// How a frame sits in the detector input: scaled by `scale`, top-left aligned, `width` x `height`.
public struct Letterbox: Equatable {
    public let scale: Double
    public let width: Int
    public let height: Int
}

/// `letterbox_transform`: the largest scale that fits, the scaled size rounded half to even.
public func letterboxTransform(imageWidth: Int, imageHeight: Int, inputWidth: Int, inputHeight: Int) throws -> Letterbox {
    guard imageWidth >= 1, imageHeight >= 1 else { throw PoseError.invalidArgument("image size [\(imageWidth), \(imageHeight)] is empty") }
    let scale = min(Double(inputWidth) / Double(imageWidth), Double(inputHeight) / Double(imageHeight))
    let w = min(inputWidth, max(1, Int((Double(imageWidth) * scale).rounded(.toNearestOrEven))))
    let h = min(inputHeight, max(1, Int((Double(imageHeight) * scale).rounded(.toNearestOrEven))))
    return Letterbox(scale: scale, width: w, height: h)
}

/// The image → detector-input matrix of `lb` for `warpAffineBilinear`, with OpenCV `resize`'s
/// pixel-centre alignment; input pixels beyond the scaled frame stay black (pad value 0).
public func letterboxMatrix(_ lb: Letterbox) -> Affine {
    let s = lb.scale
    return Affine(a: s, b: 0, c: 0.5 * s - 0.5, d: 0, e: s, f: 0.5 * s - 0.5)
}

/// Anchor centres `[x0, y0, x1, y1, ...]` in input pixels and their strides, level by level, row-major.
public func anchorPoints(_ spec: DetectorSpec) -> (centres: [Double], strides: [Double]) {
    var centres: [Double] = []
    var strides: [Double] = []
    centres.reserveCapacity(2 * spec.numAnchors)
    for s in spec.strides {
        for row in 0..<(spec.inputHeight / s) {
            for col in 0..<(spec.inputWidth / s) {
                centres.append((Double(col) + 0.5) * Double(s))
                centres.append((Double(row) + 0.5) * Double(s))
                strides.append(Double(s))
            }
        }
    }
    return (centres, strides)
}

private func sigmoid(_ x: Double) -> Double { 1.0 / (1.0 + exp(-min(max(x, -80.0), 80.0))) }

/// `decode`: raw outputs → boxes `[x1, y1, x2, y2]` per anchor in input pixels (clipped) and
/// person scores. (The exported artifacts decode in their graph; this is for raw outputs and tests.)
public func decodeDetections(logits: [Double], boxLogits: [Double], spec: DetectorSpec) throws -> (boxes: [Double], scores: [Double]) {
    let (centres, strides) = anchorPoints(spec)
    let n = strides.count
    let bins = spec.numBins
    guard logits.count == n, boxLogits.count == n * 4 * bins else {
        throw PoseError.invalidArgument("\(logits.count) anchors in the outputs, \(n) expected for input [\(spec.inputWidth), \(spec.inputHeight)]")
    }
    var boxes = [Double](repeating: 0, count: 4 * n)
    var scores = [Double](repeating: 0, count: n)
    var dist = [Double](repeating: 0, count: 4)
    var e = [Double](repeating: 0, count: bins)
    let w = Double(spec.inputWidth)
    let h = Double(spec.inputHeight)
    for i in 0..<n {
        for side in 0..<4 {
            let off = (i * 4 + side) * bins
            var mx = -Double.infinity
            for b in 0..<bins { mx = max(mx, boxLogits[off + b]) }
            var sum = 0.0
            for b in 0..<bins {
                e[b] = exp(boxLogits[off + b] - mx)
                sum += e[b]
            }
            var d = 0.0
            for b in 0..<bins { d += e[b] / sum * Double(b) }
            dist[side] = d * strides[i]
        }
        let cx = centres[2 * i]
        let cy = centres[2 * i + 1]
        boxes[4 * i] = min(max(cx - dist[0], 0), w)
        boxes[4 * i + 1] = min(max(cy - dist[1], 0), h)
        boxes[4 * i + 2] = min(max(cx + dist[2], 0), w)
        boxes[4 * i + 3] = min(max(cy + dist[3], 0), h)
        scores[i] = sigmoid(logits[i])
    }
    return (boxes, scores)
}

/// IoU of boxes `i` and `j` of a flat `[x1, y1, x2, y2, ...]` array; 0 when the union is empty.
public func boxIou(_ boxes: [Double], _ i: Int, _ j: Int) -> Double {
    let iw = max(min(boxes[4 * i + 2], boxes[4 * j + 2]) - max(boxes[4 * i], boxes[4 * j]), 0)
    let ih = max(min(boxes[4 * i + 3], boxes[4 * j + 3]) - max(boxes[4 * i + 1], boxes[4 * j + 1]), 0)
    let inter = iw * ih
    func area(_ k: Int) -> Double { max(boxes[4 * k + 2] - boxes[4 * k], 0) * max(boxes[4 * k + 3] - boxes[4 * k + 1], 0) }
    let union = area(i) + area(j) - inter
    return union > 0 ? inter / union : 0
}

/// `nms`: greedy suppression, candidates by descending score (ties: lower index first), kept
/// unless their IoU with a kept box is above `iouThreshold`, at most `maxDetections`.
public func nms(boxes: [Double], scores: [Double], scoreThreshold: Double, iouThreshold: Double, maxDetections: Int) -> [Int] {
    let order = scores.indices.filter { scores[$0] >= scoreThreshold }
        .sorted { scores[$0] != scores[$1] ? scores[$0] > scores[$1] : $0 < $1 }
    var keep: [Int] = []
    for i in order {
        if keep.count >= maxDetections { break }
        if !keep.contains(where: { boxIou(boxes, i, $0) > iouThreshold }) { keep.append(i) }
    }
    return keep
}

/// `boxes_to_image`: input-pixel `[x1, y1, x2, y2]` of `keep` → image-pixel boxes, clipped.
public func boxesToImage(_ boxes: [Double], keep: [Int], letterbox lb: Letterbox, imageWidth: Int, imageHeight: Int) -> [Box] {
    let w = Double(imageWidth)
    let h = Double(imageHeight)
    return keep.map { i in
        let x1 = min(max(boxes[4 * i] / lb.scale, 0), w)
        let y1 = min(max(boxes[4 * i + 1] / lb.scale, 0), h)
        let x2 = min(max(boxes[4 * i + 2] / lb.scale, 0), w)
        let y2 = min(max(boxes[4 * i + 3] / lb.scale, 0), h)
        return Box(x: x1, y: y1, w: x2 - x1, h: y2 - y1)
    }
}

/// A person box in image pixels and its score.
public struct Detection: Equatable {
    public let box: Box
    public let score: Double
}

/// What the exported detector's metadata (`kind: person_detector`) tells the app.
public final class DetectorMetadata {
    public let spec: DetectorSpec
    public let layout: Layout
    public let isImage: Bool
    public let format: String
    public var numAnchors: Int { spec.numAnchors }

    public init(spec: DetectorSpec, layout: Layout, isImage: Bool, format: String) {
        self.spec = spec
        self.layout = layout
        self.isImage = isImage
        self.format = format
    }

    public static func parse(_ text: String, source: String) throws -> DetectorMetadata {
        let root = try JSONNode.parse(text, source: source)
        guard try root["kind"].string() == "person_detector" else { throw try root["kind"].fail("is not \"person_detector\"") }
        let spec = try DetectorSpec.fromJSON(try root["detector_spec"])
        let input = try root["input"]
        guard try input["width"].int() == spec.inputWidth, try input["height"].int() == spec.inputHeight else {
            throw input.fail("size does not match detector_spec.input_size")
        }
        let n = Double(spec.numAnchors)
        let outs = try root["outputs"]
        guard try outs["boxes"]["shape"].doubles() == [1, n, 4], try outs["scores"]["shape"].doubles() == [1, n] else {
            throw outs.fail("shapes do not match the \(spec.numAnchors) anchors of the spec")
        }
        let layout: Layout
        switch try input["layout"].string() {
        case "NHWC": layout = .nhwc
        case "NCHW": layout = .nchw
        default: throw try input["layout"].fail("is not NHWC or NCHW")
        }
        let isImage = try input.opt("type")?.string() == "image"
        return DetectorMetadata(spec: spec, layout: layout, isImage: isImage, format: try root["format"].string())
    }
}

/// The frame → detector → person boxes step (`PersonDetectorStep` in the Kotlin core).
public final class PersonDetectorStep {
    public let metadata: DetectorMetadata
    public var spec: DetectorSpec { metadata.spec }

    public init(metadata: DetectorMetadata) { self.metadata = metadata }

    /// The letterboxed uint8 input (metadata layout) of `frame` and its transform.
    public func prepare(_ frame: RgbImage) throws -> ([UInt8], Letterbox) {
        let lb = try letterboxTransform(imageWidth: frame.width, imageHeight: frame.height, inputWidth: spec.inputWidth, inputHeight: spec.inputHeight)
        let pixels = try warpAffineBilinear(frame, imageToCrop: letterboxMatrix(lb), outputWidth: spec.inputWidth, outputHeight: spec.inputHeight, layout: metadata.layout)
        return (pixels, lb)
    }

    /// The artifact's `boxes (1, N, 4)` and `scores (1, N)` → image-pixel detections, best first.
    public func finish(boxes: [Float], scores: [Float], letterbox lb: Letterbox, imageWidth: Int, imageHeight: Int,
                       maxPeople: Int? = nil, scoreThreshold: Double? = nil) throws -> [Detection] {
        let n = spec.numAnchors
        guard boxes.count == 4 * n, scores.count == n else {
            throw MetadataError("detector outputs \(boxes.count / 4) boxes and \(scores.count) scores; metadata promises \(n) anchors")
        }
        let b = boxes.map { Double($0) }
        let s = scores.map { Double($0) }
        let keep = nms(boxes: b, scores: s, scoreThreshold: scoreThreshold ?? spec.scoreThreshold, iouThreshold: spec.iouThreshold,
                       maxDetections: maxPeople ?? spec.maxDetections)
        return zip(boxesToImage(b, keep: keep, letterbox: lb, imageWidth: imageWidth, imageHeight: imageHeight), keep).map {
            Detection(box: $0.0, score: s[$0.1])
        }
    }
}

/// File-name prefix of the detector artifacts `starpose-mobile export` writes.
public let detectorPrefix = "person_detector"

/// The detector artifact among `names` with extension `ext` and a sidecar (`<name>.json`) that
/// parses as detector metadata, or nil.
public func pickDetectorArtifact(_ names: [String], extension ext: String, read: (String) throws -> String) throws -> (String, DetectorMetadata)? {
    for model in names.filter({ $0.hasPrefix(detectorPrefix) && $0.hasSuffix(".\(ext)") }).sorted() {
        let sidecar = "\(model).json"
        if names.contains(sidecar) { return (model, try DetectorMetadata.parse(try read(sidecar), source: sidecar)) }
    }
    return nil
}
