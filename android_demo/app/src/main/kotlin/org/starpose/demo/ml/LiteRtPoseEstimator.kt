package org.starpose.demo.ml

import android.content.Context
import android.os.Build
import org.starpose.core.MetadataException
import org.starpose.core.ModelMetadata
import org.starpose.core.ModelOutput
import org.starpose.core.PreparedInput
import org.tensorflow.lite.DataType
import org.tensorflow.lite.Delegate
import org.tensorflow.lite.Interpreter
import org.tensorflow.lite.gpu.CompatibilityList
import org.tensorflow.lite.gpu.GpuDelegate
import org.tensorflow.lite.nnapi.NnApiDelegate
import java.nio.ByteBuffer
import java.nio.ByteOrder

/** Where LiteRT runs the graph. XNNPACK is the CPU path and the fallback of the other two. */
enum class LiteRtAccelerator { XNNPACK, GPU, NNAPI }

/**
 * LiteRT (TFLite) runtime running the `.tflite` bundle through its `serving_default` signature,
 * whose inputs and outputs carry the metadata's names (image, crop_to_image; keypoints, scores).
 */
class LiteRtPoseEstimator private constructor(
    private val interpreter: Interpreter,
    private val delegate: Delegate?,
    override val metadata: ModelMetadata,
    accelerator: String,
) : PoseEstimator {
    override val name: String = "LiteRT · $accelerator · ${metadata.precision}"

    private val signature = interpreter.signatureKeys.firstOrNull()
        ?: throw MetadataException("the .tflite has no signature; re-export it with starpose-mobile export --format tflite")
    private val outputNames = interpreter.getSignatureOutputs(signature).toList()
    private val outputShapes = outputNames.map { interpreter.getOutputTensorFromSignature(it, signature).shape() }
    private val imageBuffer: ByteBuffer
    private val affineBuffer = ByteBuffer.allocateDirect(6 * 4).order(ByteOrder.nativeOrder())
    private val outputBuffers: Map<String, ByteBuffer>

    init {
        val image = interpreter.getInputTensorFromSignature(metadata.input.name, signature)
        val want = metadata.input.shape.map { it.toInt() }
        if (image.shape().toList() != want) {
            throw MetadataException("model input '${metadata.input.name}' is ${image.shape().toList()}, metadata says $want")
        }
        val wantType = if (metadata.input.dtype.label == "uint8") DataType.UINT8 else DataType.FLOAT32
        if (image.dataType() != wantType) throw MetadataException("model input is ${image.dataType()}, metadata says ${metadata.input.dtype.label}")
        imageBuffer = ByteBuffer.allocateDirect(image.numBytes()).order(ByteOrder.nativeOrder())
        outputBuffers = outputNames.associateWith { name ->
            val t = interpreter.getOutputTensorFromSignature(name, signature)
            if (t.dataType() != DataType.FLOAT32) throw MetadataException("output '$name' is ${t.dataType()}, expected FLOAT32")
            ByteBuffer.allocateDirect(t.numBytes()).order(ByteOrder.nativeOrder())
        }
    }

    override fun run(input: PreparedInput): ModelOutput {
        imageBuffer.rewind()
        input.pixels?.let { imageBuffer.put(it) } ?: imageBuffer.asFloatBuffer().put(input.floats!!)
        imageBuffer.rewind()
        val inputs = HashMap<String, Any>()
        inputs[metadata.input.name] = imageBuffer
        if (metadata.affineInput.present) {
            affineBuffer.rewind()
            affineBuffer.asFloatBuffer().put(input.affineInput)
            affineBuffer.rewind()
            inputs[metadata.affineInput.name] = affineBuffer
        }
        outputBuffers.values.forEach { it.rewind() }
        interpreter.runSignature(inputs, outputBuffers, signature)
        val data = outputNames.map { name ->
            val fb = outputBuffers.getValue(name).also { it.rewind() }.asFloatBuffer()
            FloatArray(fb.remaining()).also { fb.get(it) }
        }
        return ModelOutput.fromTensors(outputShapes.map { s -> LongArray(s.size) { s[it].toLong() } }, data, metadata)
    }

    override fun close() {
        interpreter.close()
        (delegate as? AutoCloseable)?.close()
    }

    companion object {
        fun create(context: Context, accelerator: LiteRtAccelerator): LiteRtPoseEstimator {
            val asset = ModelAssets.find(context, "tflite", "tflite")
            val metadata = ModelAssets.metadata(asset)
            val options = Interpreter.Options().setNumThreads(4).setUseXNNPACK(true)
            var delegate: Delegate? = null
            var used = "XNNPACK"
            when (accelerator) {
                LiteRtAccelerator.XNNPACK -> Unit
                LiteRtAccelerator.GPU -> {
                    val compat = CompatibilityList()
                    if (compat.isDelegateSupportedOnThisDevice) {
                        delegate = GpuDelegate(compat.bestOptionsForThisDevice)
                        used = "GPU"
                    } else {
                        used = "XNNPACK (no GPU delegate on this device)"
                    }
                }
                LiteRtAccelerator.NNAPI -> {
                    if (Build.VERSION.SDK_INT >= Build.VERSION_CODES.P) {
                        delegate = NnApiDelegate()
                        used = "NNAPI"
                    } else {
                        used = "XNNPACK (NNAPI needs Android 9)"
                    }
                }
            }
            delegate?.let { options.addDelegate(it) }
            val interpreter = Interpreter(asset.file, options)
            return LiteRtPoseEstimator(interpreter, delegate, metadata, used)
        }
    }
}
