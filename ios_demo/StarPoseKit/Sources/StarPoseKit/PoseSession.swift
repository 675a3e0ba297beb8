#if canImport(CoreVideo)
import CoreVideo
import Foundation
import StarPoseCore

/// Everything an overlay draws for one frame: one tracked `pose`, or every person in `people`.
public struct PoseFrame {
    public let pose: PoseResult?
    public let drawList: DrawList?
    public var people: [(PersonPose, DrawList)] = []
    public let imageWidth: Int
    public let imageHeight: Int
    public let runtime: String
    public let fps: Double
    public let modelMs: Double
    public let frameMs: Double
}

/// Camera frame → pose: wraps a `PoseEstimator` with StarPoseCore's `PosePipeline` (rebuilt when
/// the frame size changes) and the FPS/latency statistics. With a `PersonDetector` everyone in
/// view is followed (`PeoplePipeline`: the detector every few frames, one pose run per person).
/// Call from one serial queue.
public final class PoseSession {
    public let estimator: PoseEstimator
    public let detector: PersonDetector?
    public let maxPeople: Int
    private var pipeline: PosePipeline?
    private var people: PeoplePipeline?
    private let stats = FrameStats()

    public init(estimator: PoseEstimator, detector: PersonDetector? = nil, maxPeople: Int = 5) {
        self.estimator = estimator
        self.detector = detector
        self.maxPeople = maxPeople
    }

    /// `pixelBuffer`: an upright BGRA camera frame; `timestamp`: its presentation time in seconds.
    public func process(_ pixelBuffer: CVPixelBuffer, timestamp: Double) throws -> PoseFrame {
        let start = DispatchTime.now().uptimeNanoseconds
        CVPixelBufferLockBaseAddress(pixelBuffer, .readOnly)
        defer { CVPixelBufferUnlockBaseAddress(pixelBuffer, .readOnly) }
        guard CVPixelBufferGetPixelFormatType(pixelBuffer) == kCVPixelFormatType_32BGRA,
              let base = CVPixelBufferGetBaseAddress(pixelBuffer) else {
            throw PoseError.invalidArgument("camera frames must be 32BGRA")
        }
        let width = CVPixelBufferGetWidth(pixelBuffer)
        let height = CVPixelBufferGetHeight(pixelBuffer)
        let rowBytes = CVPixelBufferGetBytesPerRow(pixelBuffer)
        let frame = try RgbImage(width: width, height: height, bytes: UnsafeRawBufferPointer(start: base, count: rowBytes * height),
                                 pixelStride: 4, rowStride: rowBytes, channelOffsets: (2, 1, 0))
        let pl: PosePipeline
        if let existing = pipeline, existing.imageWidth == width, existing.imageHeight == height {
            pl = existing
        } else {
            pl = try PosePipeline(metadata: estimator.metadata, imageWidth: width, imageHeight: height)
            pipeline = pl
        }
        if let detector {
            return try processPeople(frame, pipeline: pl, detector: detector, timestamp: timestamp, start: start)
        }
        let prepared = try pl.prepare(frame)
        let modelStart = DispatchTime.now().uptimeNanoseconds
        let output = try estimator.run(prepared)
        let modelEnd = DispatchTime.now().uptimeNanoseconds
        let pose = try pl.finish(prepared, output: output, timestamp: timestamp)
        let end = DispatchTime.now().uptimeNanoseconds
        stats.onFrame(timestampNs: UInt64(max(timestamp, 0) * 1e9), latencyMs: Double(modelEnd - modelStart) / 1e6)
        let spec = estimator.metadata.spec
        return PoseFrame(
            pose: pose,
            drawList: skeletonDrawList(scores: pose.scores, skeleton: spec.skeleton, keypointNames: spec.keypointNames),
            imageWidth: width,
            imageHeight: height,
            runtime: estimator.name,
            fps: stats.fps,
            modelMs: stats.latencyMs,
            frameMs: Double(end - start) / 1e6
        )
    }

    private func processPeople(_ frame: RgbImage, pipeline pl: PosePipeline, detector: PersonDetector, timestamp: Double,
                               start: UInt64) throws -> PoseFrame {
        let pp: PeoplePipeline
        if let existing = people, existing.pose === pl {
            pp = existing
        } else {
            pp = try PeoplePipeline(pose: pl, detector: PersonDetectorStep(metadata: detector.metadata), maxPeople: maxPeople)
            people = pp
        }
        var modelNs: UInt64 = 0
        if pp.needsDetection() {
            let (pixels, lb) = try pp.detector.prepare(frame)
            let t0 = DispatchTime.now().uptimeNanoseconds
            let (boxes, scores) = try detector.run(pixels)
            modelNs += DispatchTime.now().uptimeNanoseconds - t0
            try pp.onDetections(boxes: boxes, scores: scores, letterbox: lb)
        }
        let prepared = try pp.preparePeople(frame)
        var outputs: [ModelOutput] = []
        for (_, input) in prepared {
            let t0 = DispatchTime.now().uptimeNanoseconds
            outputs.append(try estimator.run(input))
            modelNs += DispatchTime.now().uptimeNanoseconds - t0
        }
        let poses = try pp.finishPeople(prepared, outputs: outputs, timestamp: timestamp)
        let end = DispatchTime.now().uptimeNanoseconds
        stats.onFrame(timestampNs: UInt64(max(timestamp, 0) * 1e9), latencyMs: Double(modelNs) / 1e6)
        let spec = estimator.metadata.spec
        var result = PoseFrame(pose: nil, drawList: nil, imageWidth: pl.imageWidth, imageHeight: pl.imageHeight,
                               runtime: "\(estimator.name) + detector", fps: stats.fps, modelMs: stats.latencyMs,
                               frameMs: Double(end - start) / 1e6)
        result.people = poses.map { ($0, skeletonDrawList(scores: $0.scores, skeleton: spec.skeleton, keypointNames: spec.keypointNames)) }
        return result
    }
}
#endif
