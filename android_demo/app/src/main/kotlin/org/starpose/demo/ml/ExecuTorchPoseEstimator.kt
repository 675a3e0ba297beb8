package org.starpose.demo.ml

import android.content.Context
import org.pytorch.executorch.EValue
import org.pytorch.executorch.Module
import org.pytorch.executorch.Tensor
import org.starpose.core.ModelMetadata
import org.starpose.core.ModelOutput
import org.starpose.core.PreparedInput

/**
 * ExecuTorch runtime (executorch-android AAR) running the `.pte` bundle: uint8 RGB crop (and
 * the crop → image matrix when the bundle takes one) in, keypoints and scores out. Delegates
 * (XNNPACK, Vulkan, QNN) were chosen at export time and are inside the `.pte`.
 */
class ExecuTorchPoseEstimator private constructor(
    private val module: Module,
    override val metadata: ModelMetadata,
) : PoseEstimator {
    override val name: String = "ExecuTorch · ${metadata.backend} · ${metadata.precision}"

    override fun run(input: PreparedInput): ModelOutput {
        val image = input.pixels?.let { Tensor.fromBlobUnsigned(it, input.shape) }
            ?: Tensor.fromBlob(input.floats!!, input.shape)
        val args = if (metadata.affineInput.present) {
            arrayOf(EValue.from(image), EValue.from(Tensor.fromBlob(input.affineInput, longArrayOf(1, 2, 3))))
        } else {
            arrayOf(EValue.from(image))
        }
        val tensors = module.forward(*args).map { it.toTensor() }
        return ModelOutput.fromTensors(tensors.map { it.shape() }, tensors.map { it.dataAsFloatArray }, metadata)
    }

    override fun close() = module.destroy()

    companion object {
        /** The exporters also embed the metadata as a constant method `metadata` in the `.pte`. */
        private const val METADATA_METHOD = "metadata"

        fun create(context: Context): ExecuTorchPoseEstimator {
            val asset = ModelAssets.find(context, "pte", "executorch")
            val module = Module.load(asset.file.absolutePath)
            val metadata = ModelAssets.metadata(asset) {
                runCatching { module.execute(METADATA_METHOD).firstOrNull()?.toStr() }.getOrNull()
            }
            return ExecuTorchPoseEstimator(module, metadata)
        }
    }
}
