package org.starpose.core

import kotlin.math.exp

/**
 * Port of starpose/detect/spec.py and starpose/detect/processing.py: the bundled person
 * detector's contract and its post-processing (letterbox, anchor decoding, greedy NMS, boxes back
 * to image pixels). The exported detector already decodes its boxes in the graph; the app runs
 * [nms] and [boxesToImage] on its outputs. The arithmetic follows the Python operation by
 * operation and is checked against tests/golden/detector.json.
 */

/** `DetectorSpec`: input size (w, h), normalization, strides, box distribution, NMS settings. */
class DetectorSpec(
    val inputWidth: Int = 160,
    val inputHeight: Int = 224,
    val mean: DoubleArray = doubleArrayOf(123.675, 116.28, 103.53),
    val std: DoubleArray = doubleArrayOf(58.395, 57.12, 57.375),
    val strides: IntArray = intArrayOf(8, 16, 32),
    val regMax: Int = 10,
    val padValue: Int = 0,
    val scoreThreshold: Double = 0.2,
    val iouThreshold: Double = 0.6,
    val maxDetections: Int = 10,
) {
    init {
        val big = strides.maxOrNull() ?: throw MetadataException("detector spec has no strides")
        if (inputWidth <= 0 || inputHeight <= 0 || inputWidth % big != 0 || inputHeight % big != 0) {
            throw MetadataException("detector input_size [$inputWidth, $inputHeight] must be positive multiples of $big")
        }
        if (maxDetections < 1) throw MetadataException("detector max_detections must be >= 1, got $maxDetections")
    }

    val numBins: Int get() = regMax + 1
    val numAnchors: Int get() = strides.sumOf { (inputWidth / it) * (inputHeight / it) }

    companion object {
        /** From the `detector_spec` object of a detector's metadata (or the golden fixture). */
        fun fromJson(node: JsonNode): DetectorSpec {
            val size = node["input_size"].ints()
            if (size.size != 2) node["input_size"].fail("must be [width, height]")
            return DetectorSpec(
                inputWidth = size[0], inputHeight = size[1], mean = node["mean"].doubles(), std = node["std"].doubles(),
                strides = node["strides"].ints(), regMax = node["reg_max"].int(), padValue = node["pad_value"].int(),
                scoreThreshold = node["score_threshold"].double(), iouThreshold = node["iou_threshold"].double(),
                maxDetections = node["max_detections"].int(),
            )
        }
    }
}

/** How a frame sits in the detector input: scaled by [scale], top-left aligned, [width] x [height]. */
data class Letterbox(val scale: Double, val width: Int, val height: Int)

/** `letterbox_transform`: the largest scale that fits, the scaled size rounded half to even. */
fun letterboxTransform(imageW: Int, imageH: Int, inputW: Int, inputH: Int): Letterbox {
    require(imageW >= 1 && imageH >= 1) { "image size [$imageW, $imageH] is empty" }
    val scale = minOf(inputW.toDouble() / imageW, inputH.toDouble() / imageH)
    val w = minOf(inputW, maxOf(1, Math.rint(imageW * scale).toInt()))
    val h = minOf(inputH, maxOf(1, Math.rint(imageH * scale).toInt()))
    return Letterbox(scale, w, h)
}

/**
 * The image → detector-input matrix of [lb] for [warpAffineBilinear], with OpenCV `resize`'s
 * pixel-centre alignment (input pixel x samples image position `(x + 0.5) / scale - 0.5`).
 * Input pixels beyond the scaled frame sample outside the image and stay black, the pad value 0.
 */
fun letterboxMatrix(lb: Letterbox): Affine {
    val s = lb.scale
    return Affine(s, 0.0, 0.5 * s - 0.5, 0.0, s, 0.5 * s - 0.5)
}

/** Anchor centres `[x0, y0, x1, y1, ...]` in input pixels and their strides, level by level, row-major. */
fun anchorPoints(spec: DetectorSpec): Pair<DoubleArray, DoubleArray> {
    val n = spec.numAnchors
    val centres = DoubleArray(2 * n)
    val strides = DoubleArray(n)
    var k = 0
    for (s in spec.strides) {
        for (row in 0 until spec.inputHeight / s) for (col in 0 until spec.inputWidth / s) {
            centres[2 * k] = (col + 0.5) * s
            centres[2 * k + 1] = (row + 0.5) * s
            strides[k] = s.toDouble()
            k++
        }
    }
    return Pair(centres, strides)
}

private fun sigmoid(x: Double): Double = 1.0 / (1.0 + exp(-x.coerceIn(-80.0, 80.0)))

/**
 * `decode`: raw outputs (N logits, N x 4 x (reg_max + 1) side logits) → boxes `[x1, y1, x2, y2]`
 * per anchor in input pixels, clipped, and person scores. (The exported artifacts do this in
 * their graph; this is for raw outputs and for the tests.)
 */
fun decodeDetections(logits: DoubleArray, boxLogits: DoubleArray, spec: DetectorSpec): Pair<DoubleArray, DoubleArray> {
    val (centres, strides) = anchorPoints(spec)
    val n = strides.size
    val bins = spec.numBins
    require(logits.size == n && boxLogits.size == n * 4 * bins) {
        "${logits.size} anchors in the outputs, $n expected for input [${spec.inputWidth}, ${spec.inputHeight}]"
    }
    val boxes = DoubleArray(4 * n)
    val scores = DoubleArray(n)
    val dist = DoubleArray(4)
    val e = DoubleArray(bins)
    for (i in 0 until n) {
        for (side in 0 until 4) {
            val off = (i * 4 + side) * bins
            var mx = Double.NEGATIVE_INFINITY
            for (b in 0 until bins) mx = maxOf(mx, boxLogits[off + b])
            var sum = 0.0
            for (b in 0 until bins) {
                e[b] = exp(boxLogits[off + b] - mx)
                sum += e[b]
            }
            var d = 0.0
            for (b in 0 until bins) d += e[b] / sum * b
            dist[side] = d * strides[i]
        }
        val cx = centres[2 * i]
        val cy = centres[2 * i + 1]
        boxes[4 * i] = (cx - dist[0]).coerceIn(0.0, spec.inputWidth.toDouble())
        boxes[4 * i + 1] = (cy - dist[1]).coerceIn(0.0, spec.inputHeight.toDouble())
        boxes[4 * i + 2] = (cx + dist[2]).coerceIn(0.0, spec.inputWidth.toDouble())
        boxes[4 * i + 3] = (cy + dist[3]).coerceIn(0.0, spec.inputHeight.toDouble())
        scores[i] = sigmoid(logits[i])
    }
    return Pair(boxes, scores)
}

/** IoU of boxes `i` and `j` of a flat `[x1, y1, x2, y2, ...]` array; 0 when the union is empty. */
fun boxIou(boxes: DoubleArray, i: Int, j: Int): Double {
    val iw = maxOf(minOf(boxes[4 * i + 2], boxes[4 * j + 2]) - maxOf(boxes[4 * i], boxes[4 * j]), 0.0)
    val ih = maxOf(minOf(boxes[4 * i + 3], boxes[4 * j + 3]) - maxOf(boxes[4 * i + 1], boxes[4 * j + 1]), 0.0)
    val inter = iw * ih
    fun area(k: Int) = maxOf(boxes[4 * k + 2] - boxes[4 * k], 0.0) * maxOf(boxes[4 * k + 3] - boxes[4 * k + 1], 0.0)
    val union = area(i) + area(j) - inter
    return if (union > 0) inter / union else 0.0
}

/**
 * `nms`: greedy suppression. Candidates score at least [scoreThreshold], visited by descending
 * score (ties: lower index first); one is kept unless its IoU with a kept box is above
 * [iouThreshold]; at most [maxDetections]. Returns the kept indices, best first.
 */
fun nms(boxes: DoubleArray, scores: DoubleArray, scoreThreshold: Double, iouThreshold: Double, maxDetections: Int): IntArray {
    require(boxes.size == 4 * scores.size) { "${boxes.size / 4} boxes for ${scores.size} scores" }
    val order = scores.indices.filter { scores[it] >= scoreThreshold }
        .sortedWith(compareByDescending<Int> { scores[it] }.thenBy { it })
    val keep = ArrayList<Int>()
    for (i in order) {
        if (keep.size >= maxDetections) break
        if (keep.none { boxIou(boxes, i, it) > iouThreshold }) keep.add(i)
    }
    return keep.toIntArray()
}

/** `boxes_to_image`: input-pixel `[x1, y1, x2, y2]` of [keep] → image-pixel boxes, clipped. */
fun boxesToImage(boxes: DoubleArray, keep: IntArray, lb: Letterbox, imageW: Int, imageH: Int): List<Box> =
    keep.map { i ->
        val x1 = (boxes[4 * i] / lb.scale).coerceIn(0.0, imageW.toDouble())
        val y1 = (boxes[4 * i + 1] / lb.scale).coerceIn(0.0, imageH.toDouble())
        val x2 = (boxes[4 * i + 2] / lb.scale).coerceIn(0.0, imageW.toDouble())
        val y2 = (boxes[4 * i + 3] / lb.scale).coerceIn(0.0, imageH.toDouble())
        Box(x1, y1, x2 - x1, y2 - y1)
    }

/** A person box in image pixels and its score. */
data class Detection(val box: Box, val score: Double)

/** What the exported detector's metadata (`kind: person_detector`) tells the app. */
class DetectorMetadata(val spec: DetectorSpec, val layout: Layout, val isImage: Boolean, val format: String) {
    val numAnchors: Int get() = spec.numAnchors

    companion object {
        fun parse(text: String, source: String): DetectorMetadata {
            val root = JsonNode.parse(text, source)
            if (root["kind"].string() != "person_detector") root["kind"].fail("is not \"person_detector\"")
            val spec = DetectorSpec.fromJson(root["detector_spec"])
            val input = root["input"]
            if (input["width"].int() != spec.inputWidth || input["height"].int() != spec.inputHeight) {
                input.fail("size ${input["width"].int()}x${input["height"].int()} does not match detector_spec.input_size")
            }
            val n = spec.numAnchors.toDouble()
            val outs = root["outputs"]
            if (outs["boxes"]["shape"].doubles().toList() != listOf(1.0, n, 4.0) ||
                outs["scores"]["shape"].doubles().toList() != listOf(1.0, n)) {
                outs.fail("shapes do not match the ${spec.numAnchors} anchors of the spec")
            }
            val layout = when (val l = input["layout"].string()) {
                "NHWC" -> Layout.NHWC
                "NCHW" -> Layout.NCHW
                else -> input["layout"].fail("unknown layout $l")
            }
            return DetectorMetadata(spec, layout, input.opt("type")?.string() == "image", root["format"].string())
        }

        fun fromFile(file: java.io.File): DetectorMetadata {
            if (!file.isFile) throw MetadataException("${file.path}: detector metadata not found")
            return parse(file.readText(), file.path)
        }
    }
}

/**
 * The frame → detector → person boxes step: [prepare] letterboxes a frame into the detector's
 * uint8 input, [finish] turns the artifact's `boxes (1, N, 4)` / `scores (1, N)` into image-pixel
 * detections (NMS, back through the letterbox).
 */
class PersonDetectorStep(val metadata: DetectorMetadata) {
    val spec = metadata.spec

    fun prepare(frame: RgbImage, out: ByteArray? = null): Pair<ByteArray, Letterbox> {
        val lb = letterboxTransform(frame.width, frame.height, spec.inputWidth, spec.inputHeight)
        val n = spec.inputWidth * spec.inputHeight * 3
        val buf = if (out != null && out.size >= n) out else ByteArray(n)
        warpAffineBilinear(frame, letterboxMatrix(lb), spec.inputWidth, spec.inputHeight, metadata.layout, buf)
        return Pair(buf, lb)
    }

    fun finish(boxes: FloatArray, scores: FloatArray, lb: Letterbox, imageW: Int, imageH: Int, maxPeople: Int = spec.maxDetections,
               scoreThreshold: Double = spec.scoreThreshold): List<Detection> {
        val n = spec.numAnchors
        if (boxes.size != 4 * n || scores.size != n) {
            throw MetadataException("detector outputs ${boxes.size / 4} boxes and ${scores.size} scores; metadata promises $n anchors")
        }
        val b = DoubleArray(boxes.size) { boxes[it].toDouble() }
        val s = DoubleArray(scores.size) { scores[it].toDouble() }
        val keep = nms(b, s, scoreThreshold, spec.iouThreshold, maxPeople)
        return boxesToImage(b, keep, lb, imageW, imageH).mapIndexed { k, box -> Detection(box, s[keep[k]]) }
    }
}

/** File-name prefix of the detector artifacts `starpose-mobile export` writes. */
const val DETECTOR_PREFIX = "person_detector"

/**
 * The detector artifact among [names] (asset or file names) with [extension] and a sidecar, or
 * null: `person_detector*.<extension>` whose sidecar (`<name>.json`) parses as detector metadata.
 */
fun pickDetectorArtifact(names: List<String>, extension: String, read: (String) -> String): Pair<String, DetectorMetadata>? {
    for (model in names.filter { it.startsWith(DETECTOR_PREFIX) && it.endsWith(".$extension") }.sorted()) {
        val sidecar = "$model.json"
        if (sidecar in names) return Pair(model, DetectorMetadata.parse(read(sidecar), sidecar))
    }
    return null
}
