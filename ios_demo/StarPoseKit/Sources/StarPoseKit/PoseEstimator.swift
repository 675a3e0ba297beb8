import Foundation
@_exported import StarPoseCore

/// One on-device runtime running an exported StarPose bundle. Everything around the model call
/// (crop, decode, tracking, smoothing) is shared in StarPoseCore's `PosePipeline`, so an
/// implementation only moves a `PreparedInput` into its tensors and the outputs back out.
/// Not thread-safe: a `PoseSession` calls it from one queue.
public protocol PoseEstimator: AnyObject {
    /// Shown on screen, e.g. "Core ML · all units · fp16".
    var name: String { get }
    /// The artifact's metadata: input size and layout, keypoint names, skeleton, output form.
    var metadata: ModelMetadata { get }
    func run(_ input: PreparedInput) throws -> ModelOutput
}
