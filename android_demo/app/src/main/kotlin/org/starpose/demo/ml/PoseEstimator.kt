package org.starpose.demo.ml

import org.starpose.core.ModelMetadata
import org.starpose.core.ModelOutput
import org.starpose.core.PreparedInput

/**
 * One on-device runtime running an exported StarPose bundle. Everything around the model call
 * (crop, decode, tracking, smoothing) is shared in org.starpose.core.PosePipeline, so an
 * implementation only moves [PreparedInput] into its tensors and the outputs back out.
 * Not thread-safe: the analyzer calls it from its single executor thread.
 */
interface PoseEstimator : AutoCloseable {
    /** Shown on screen, e.g. "ExecuTorch · xnnpack". */
    val name: String

    /** The artifact's metadata: input size and layout, keypoint names, skeleton, output form. */
    val metadata: ModelMetadata

    fun run(input: PreparedInput): ModelOutput
}
