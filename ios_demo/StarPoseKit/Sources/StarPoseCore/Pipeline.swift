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
        try prepareBox(frame, box: tracker.box)
    }

    /// Crop `box` (a tracked ROI or a detector box, image pixels) of `frame` into the model's input.
    public func prepareBox(_ frame: RgbImage, box: Box) throws -> PreparedInput {
        guard frame.width == imageWidth, frame.height == imageHeight else {
            throw PoseError.invalidArgument("frame is \(frame.width)x\(frame.height), pipeline was built for \(imageWidth)x\(imageHeight)")
        }
        let spec = metadata.spec
        let input = metadata.input
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
        let (image, scores) = try imageKeypoints(prepared, output: output)
        let valid = scores.map { Double($0) > threshold }
        let smoothed = try filter.filterKeypoints(image, timestamp: timestamp, validPerKeypoint: valid)
        let next = tracker.update(image, scores: scores)
        return PoseResult(keypoints: image, smoothed: smoothed, scores: scores, box: prepared.box, nextBox: next, lost: tracker.lost)
    }

    /// The model's output for `prepared` as image-pixel keypoints `[x0, y0, ...]` and scores.
    public func imageKeypoints(_ prepared: PreparedInput, output: ModelOutput) throws -> ([Double], [Float]) {
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
        return (image, scores)
    }
}

/// One tracked person's pose this frame.
public struct PersonPose {
    public let trackId: Int
    public let keypoints: [Double]
    public let smoothed: [Double]
    public let scores: [Float]
    public let box: Box
    public let boxScore: Double
}

/// Everyone in the frame (`PeoplePipeline` in the Kotlin core): detector → crops → pose for up to
/// `maxPeople` people, each followed by ROI tracking between detections (`MultiPersonTracker`).
public final class PeoplePipeline {
    public let pose: PosePipeline
    public let detector: PersonDetectorStep
    public let maxPeople: Int
    public let tracker: MultiPersonTracker
    private let threshold: Double

    public init(pose: PosePipeline, detector: PersonDetectorStep, maxPeople: Int = 5, detectEvery: Int = 5,
                roiParams: RoiParams = RoiParams(), filterParams: FilterParams? = .standard) throws {
        self.pose = pose
        self.detector = detector
        self.maxPeople = maxPeople
        self.threshold = roiParams.scoreThreshold
        let spec = pose.metadata.spec
        tracker = MultiPersonTracker(imageWidth: Double(pose.imageWidth), imageHeight: Double(pose.imageHeight),
                                     torso: try torsoIndices(spec.keypointNames), roiParams: roiParams,
                                     params: try MultiTrackParams(detectEvery: detectEvery, maxPeople: maxPeople),
                                     filterParams: filterParams, numValues: 2 * spec.numKeypoints)
    }

    public func needsDetection() -> Bool { tracker.due() }

    /// The detector artifact's outputs for this frame (letterboxed by `detector.prepare`).
    @discardableResult
    public func onDetections(boxes: [Float], scores: [Float], letterbox lb: Letterbox) throws -> [Detection] {
        let found = try detector.finish(boxes: boxes, scores: scores, letterbox: lb, imageWidth: pose.imageWidth,
                                        imageHeight: pose.imageHeight, maxPeople: maxPeople)
        tracker.assign(found.map { $0.box }, scores: found.map { $0.score })
        return found
    }

    /// One pose-model input per followed person, in `tracker.tracks` order.
    public func preparePeople(_ frame: RgbImage) throws -> [(Track, PreparedInput)] {
        try tracker.tracks.map { ($0, try pose.prepareBox(frame, box: $0.box)) }
    }

    /// The pose outputs of `prepared` (same order) → smoothed poses; advances the tracker.
    public func finishPeople(_ prepared: [(Track, PreparedInput)], outputs: [ModelOutput], timestamp: Double) throws -> [PersonPose] {
        guard prepared.count == outputs.count else {
            throw PoseError.invalidArgument("\(outputs.count) pose outputs for \(prepared.count) people")
        }
        var out: [PersonPose] = []
        for ((track, input), output) in zip(prepared, outputs) {
            let (image, scores) = try pose.imageKeypoints(input, output: output)
            let valid = scores.map { Double($0) > threshold }
            let smoothed = try track.filter?.filterKeypoints(image, timestamp: timestamp, validPerKeypoint: valid) ?? image
            tracker.update(track, xy: image, scores: scores)
            out.append(PersonPose(trackId: track.id, keypoints: image, smoothed: smoothed, scores: scores, box: input.box, boxScore: track.score))
        }
        tracker.advance()
        return out
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
