#if canImport(CoreVideo)
import CoreVideo
import Foundation
import StarPoseCore

/// Everything an overlay draws for one frame.
public struct PoseFrame {
    public let pose: PoseResult
    public let drawList: DrawList
    public let imageWidth: Int
    public let imageHeight: Int
    public let runtime: String
    public let fps: Double
    public let modelMs: Double
    public let frameMs: Double
}

/// Camera frame → pose: wraps a `PoseEstimator` with StarPoseCore's `PosePipeline` (rebuilt when
/// the frame size changes) and the FPS/latency statistics. Call from one serial queue.
public final class PoseSession {
    public let estimator: PoseEstimator
    private var pipeline: PosePipeline?
    private let stats = FrameStats()

    public init(estimator: PoseEstimator) {
        self.estimator = estimator
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
}
#endif
