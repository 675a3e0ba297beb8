package org.starpose.demo.ml

import android.content.Context

/** The runtimes the settings offer; each builds its [PoseEstimator] from the bundled assets. */
enum class Runtime(val label: String) {
    EXECUTORCH("ExecuTorch (.pte)"),
    LITERT_XNNPACK("LiteRT · CPU/XNNPACK (.tflite)"),
    LITERT_GPU("LiteRT · GPU delegate (.tflite)"),
    LITERT_NNAPI("LiteRT · NNAPI (.tflite)");

    fun create(context: Context): PoseEstimator = when (this) {
        EXECUTORCH -> ExecuTorchPoseEstimator.create(context)
        LITERT_XNNPACK -> LiteRtPoseEstimator.create(context, LiteRtAccelerator.XNNPACK)
        LITERT_GPU -> LiteRtPoseEstimator.create(context, LiteRtAccelerator.GPU)
        LITERT_NNAPI -> LiteRtPoseEstimator.create(context, LiteRtAccelerator.NNAPI)
    }
}
