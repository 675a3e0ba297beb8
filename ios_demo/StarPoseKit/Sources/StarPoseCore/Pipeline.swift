import Foundation

// The per-frame loop of the demo apps, runtime-independent so that it is tested with XCTest
// (android_demo/core's Pipeline.kt is the same):
//
//   tracker box → centre/scale (spec padding) → image→crop affine → crop tensor (metadata layout)
//   → [a PoseEstimator runs the model] → keypoints → image pixels → One Euro → tracker update.

/// One model input, ready for any runtime. Exactly one of `pixels` / `floats` is set.
public struct PreparedInput {
    public let box: Box
    public let centerScale: CenterScale
    public let imageToCrop: Affine
    public let cropToImage: Affine
    /// uint8 RGB crop in the metadata's layout (interleaved for a Core ML image input).
    public let pixels: [UInt8]?
    /// Normalized float crop (dtype float32, normalization external).
    public let floats: [Float]?
    public let shape: [Int]

    /// The `(1, 2, 3)` crop → image input of bundles with `affine_input.present`.
    public var affineInput: [Float] { cropToImage.array.map { Float($0) } }
}

/// What a runtime returns, already split by meaning.
public enum ModelOutput {
    /// Bundled decoding: `(1, K, 2)` keypoints (crop or image pixels per metadata), `(1, K)` scores.
    case decoded(keypoints: [Float], scores: [Float])
    /// Raw head outputs `(1, K, Lx)` and `(1, K, Ly)`, decoded in the app.
    case simcc(x: [Float], y: [Float])

    /// Assign a runtime's output tensors to their meaning by shape, since output order and names
    /// differ between converters (SimCC x before y when both have the same length).
    public static func fromTensors(shapes: [[Int]], data: [[Float]], metadata: ModelMetadata) throws -> ModelOutput {
        guard shapes.count == data.count else { throw PoseError.invalidArgument("\(shapes.count) shapes for \(data.count) tensors") }
        let k = metadata.spec.numKeypoints
        func find(_ expected: [Int], skip: Int = -1) -> Int? {
            shapes.indices.first { $0 != skip && shapes[$0] == expected }
        }
        let got = shapes.map { "\($0)" }.joined(separator: ", ")
        switch metadata.outputs {
        case .decoded:
            guard let ik = find([1, k, 2]), let isc = find([1, k]) else {
                throw MetadataError("model outputs \(got); metadata promises keypoints (1, \(k), 2) and scores (1, \(k))")
            }
            return .decoded(keypoints: data[ik], scores: data[isc])
        case let .simcc(lx, ly):
            guard let ix = find([1, k, lx]), let iy = find([1, k, ly], skip: ix) else {
                throw MetadataError("model outputs \(got); metadata promises SimCC (1, \(k), \(lx)) and (1, \(k), \(ly))")
            }
            return .simcc(x: data[ix], y: data[iy])
        }
    }
}

/// One frame's pose in image pixels.
public struct PoseResult {
    public let keypoints: [Double]
    public let smoothed: [Double]
    public let scores: [Float]
    public let box: Box
    public let nextBox: Box
    public let lost: Bool
}

public final class PosePipeline {
    public let metadata: ModelMetadata
    public let imageWidth: Int
    public let imageHeight: Int
    public let tracker: RoiTracker
    public let filter: OneEuroFilter
    private let threshold: Double

    public init(metadata: ModelMetadata, imageWidth: Int, imageHeight: Int, roiParams: RoiParams = RoiParams(), filterParams: FilterParams = .standard) throws {
        self.metadata = metadata
        self.imageWidth = imageWidth
        self.imageHeight = imageHeight
        tracker = RoiTracker(imageWidth: Double(imageWidth), imageHeight: Double(imageHeight),
                             torso: try torsoIndices(metadata.spec.keypointNames), params: roiParams)
        filter = OneEuroFilter(size: 2 * metadata.spec.numKeypoints, params: filterParams)
        threshold = roiParams.scoreThreshold
    }

    public func reset() {
        tracker.reset()
        filter.reset()
    }

    /// Crop the tracked region of `frame` into the model's input tensor.
    public func prepare(_ frame: RgbImage) throws -> PreparedInput {
        guard frame.width == imageWidth, frame.height == imageHeight else {
            throw PoseError.invalidArgument("frame is \(frame.width)x\(frame.height), pipeline was built for \(imageWidth)x\(imageHeight)")
        }
        let spec = metadata.spec
        let input = metadata.input
        let box = tracker.box
        let cs = bboxXywhToCs(box, inputWidth: spec.inputWidth, inputHeight: spec.inputHeight, padding: spec.bboxPadding)
        let imageToCrop = try getWarpMatrix(cs, rotation: 0, outputWidth: spec.inputWidth, outputHeight: spec.inputHeight)
        let cropToImage = try imageToCrop.inverse()
        // An image-type input (Core ML) is filled from an interleaved RGB crop whatever the layout.
        let layout: Layout = input.isImage ? .nhwc : input.layout
        if input.normalizeInApp {
            let crop = try warpAffineBilinear(frame, imageToCrop: imageToCrop, outputWidth: input.width, outputHeight: input.height, layout: .nhwc)
            let floats = normalizeImage(crop, width: input.width, height: input.height, mean: spec.mean, std: spec.std, inputLayout: .nhwc, outputLayout: layout)
            return PreparedInput(box: box, centerScale: cs, imageToCrop: imageToCrop, cropToImage: cropToImage, pixels: nil, floats: floats, shape: input.shape)
        }
        let pixels = try warpAffineBilinear(frame, imageToCrop: imageToCrop, outputWidth: input.width, outputHeight: input.height, layout: layout)
        return PreparedInput(box: box, centerScale: cs, imageToCrop: imageToCrop, cropToImage: cropToImage, pixels: pixels, floats: nil, shape: input.shape)
    }

    /// Turn the model's output for `prepared` into an image-pixel pose and advance the tracker.
    public func finish(_ prepared: PreparedInput, output: ModelOutput, timestamp: Double) throws -> PoseResult {
        let k = metadata.spec.numKeypoints
        let image: [Double]
        let scores: [Float]
        switch output {
        case let .decoded(keypoints, s):
            guard keypoints.count == 2 * k, s.count == k else { throw PoseError.invalidArgument("decoded output is not \(k) keypoints") }
            let kp = try Keypoints(xy: keypoints, scores: s)
            if case .decoded(units: .imagePixels) = metadata.outputs {
                image = kp.xy.map { Double($0) }
            } else {
                image = keypointsToImage(kp, cropToImage: prepared.cropToImage)
            }
            scores = kp.scores
        case let .simcc(x, y):
            let kp = try decodeSimcc(x, y, numKeypoints: k, splitRatio: metadata.spec.simccSplitRatio)
            image = keypointsToImage(kp, cropToImage: prepared.cropToImage)
            scores = kp.scores
        }
        let valid = scores.map { Double($0) > threshold }
        let smoothed = try filter.filterKeypoints(image, timestamp: timestamp, validPerKeypoint: valid)
        let next = tracker.update(image, scores: scores)
        return PoseResult(keypoints: image, smoothed: smoothed, scores: scores, box: prepared.box, nextBox: next, lost: tracker.lost)
    }
}

/// Frames per second and model latency as exponential moving averages, for the overlay.
public final class FrameStats {
    private let smoothing: Double
    public private(set) var fps = 0.0
    public private(set) var latencyMs = 0.0
    private var lastNs: UInt64?

    public init(smoothing: Double = 0.1) {
        self.smoothing = smoothing
    }

    public func onFrame(timestampNs: UInt64, latencyMs latency: Double) {
        if let last = lastNs, timestampNs > last {
            let instant = 1e9 / Double(timestampNs - last)
            fps = fps == 0 ? instant : fps + smoothing * (instant - fps)
        }
        lastNs = timestampNs
        latencyMs = latencyMs == 0 ? latency : latencyMs + smoothing * (latency - latencyMs)
    }
}
