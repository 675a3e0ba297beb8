package org.starpose.demo.ml

import android.content.Context
import org.pytorch.executorch.EValue
import org.pytorch.executorch.Module
import org.pytorch.executorch.Tensor
import org.starpose.core.DetectorMetadata
import org.starpose.core.MetadataException
import org.starpose.core.pickDetectorArtifact
import org.tensorflow.lite.DataType
import org.tensorflow.lite.Interpreter
import java.nio.ByteBuffer
import java.nio.ByteOrder

/**
 * The exported person detector (`person_detector_*`, see docs/EXPORT.md) in one runtime: the
 * letterboxed uint8 frame in, `boxes (1, N, 4)` and `scores (1, N)` out. NMS and the way back to
 * image pixels are in org.starpose.core.PersonDetectorStep. Not thread-safe, like [PoseEstimator].
 */
interface PersonDetector : AutoCloseable {
    val metadata: DetectorMetadata

    /** [pixels]: `metadata.spec` input size, uint8 RGB in the metadata's layout → (boxes, scores). */
    fun run(pixels: ByteArray): Pair<FloatArray, FloatArray>

    companion object {
        /** The detector for [runtime] from the app's assets, or null when none was exported there. */
        fun create(context: Context, runtime: Runtime): PersonDetector? {
            val names = context.assets.list("")?.toList().orEmpty()
            val read = { name: String -> context.assets.open(name).use { it.readBytes().toString(Charsets.UTF_8) } }
            val extension = if (runtime == Runtime.EXECUTORCH) "pte" else "tflite"
            val (name, metadata) = pickDetectorArtifact(names, extension, read) ?: return null
            val file = ModelAssets.copy(context, name)
            return if (extension == "pte") {
                ExecuTorchPersonDetector(Module.load(file.absolutePath), metadata)
            } else {
                LiteRtPersonDetector(Interpreter(file, Interpreter.Options().setNumThreads(4).setUseXNNPACK(true)), metadata)
            }
        }

        /** Boxes first, scores second, told apart by their shapes (4 values per anchor vs 1). */
        fun split(a: FloatArray, b: FloatArray, anchors: Int): Pair<FloatArray, FloatArray> = when {
            a.size == 4 * anchors && b.size == anchors -> Pair(a, b)
            b.size == 4 * anchors && a.size == anchors -> Pair(b, a)
            else -> throw MetadataException("detector outputs of ${a.size} and ${b.size} values; metadata promises $anchors anchors")
        }
    }
}

class ExecuTorchPersonDetector(private val module: Module, override val metadata: DetectorMetadata) : PersonDetector {
    private val shape = longArrayOf(1, metadata.spec.inputHeight.toLong(), metadata.spec.inputWidth.toLong(), 3)

    override fun run(pixels: ByteArray): Pair<FloatArray, FloatArray> {
        val outs = module.forward(EValue.from(Tensor.fromBlobUnsigned(pixels, shape))).map { it.toTensor().dataAsFloatArray }
        if (outs.size != 2) throw MetadataException("the detector program returned ${outs.size} outputs, expected boxes and scores")
        return PersonDetector.split(outs[0], outs[1], metadata.numAnchors)
    }

    override fun close() = module.destroy()
}

class LiteRtPersonDetector(private val interpreter: Interpreter, override val metadata: DetectorMetadata) : PersonDetector {
    private val signature = interpreter.signatureKeys.firstOrNull()
        ?: throw MetadataException("the detector .tflite has no signature; re-export it with starpose-mobile export --format tflite")
    private val input = ByteBuffer.allocateDirect(metadata.spec.inputWidth * metadata.spec.inputHeight * 3).order(ByteOrder.nativeOrder())
    private val outputs = interpreter.getSignatureOutputs(signature).associateWith { name ->
        val t = interpreter.getOutputTensorFromSignature(name, signature)
        if (t.dataType() != DataType.FLOAT32) throw MetadataException("detector output '$name' is ${t.dataType()}, expected FLOAT32")
        ByteBuffer.allocateDirect(t.numBytes()).order(ByteOrder.nativeOrder())
    }

    override fun run(pixels: ByteArray): Pair<FloatArray, FloatArray> {
        input.rewind()
        input.put(pixels)
        input.rewind()
        outputs.values.forEach { it.rewind() }
        interpreter.runSignature(mapOf("image" to input), outputs, signature)
        val boxes = outputs.getValue("boxes").also { it.rewind() }.asFloatBuffer().let { fb -> FloatArray(fb.remaining()).also { fb.get(it) } }
        val scores = outputs.getValue("scores").also { it.rewind() }.asFloatBuffer().let { fb -> FloatArray(fb.remaining()).also { fb.get(it) } }
        return PersonDetector.split(boxes, scores, metadata.numAnchors)
    }

    override fun close() = interpreter.close()
}
