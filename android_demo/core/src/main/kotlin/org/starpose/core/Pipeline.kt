package org.starpose.core

/**
 * The per-frame loop of the demo apps, runtime-independent so that it is tested on the JVM:
 *
 *   tracker box → centre/scale (spec padding) → image→crop affine → crop tensor (metadata layout)
 *   → [a PoseEstimator runs the model] → keypoints → image pixels → One Euro → tracker update.
 *
 * The golden `pipeline` trace (tests/golden/tracking.json) is this loop run by the Python
 * reference; the runtimes (ExecuTorch, LiteRT, Core ML) only fill in [ModelOutput].
 */

/** One model input, ready for any runtime. Exactly one of [pixels] / [floats] is set. */
class PreparedInput(
    val box: Box,
    val centerScale: CenterScale,
    val imageToCrop: Affine,
    val cropToImage: Affine,
    /** uint8 RGB crop in the metadata's layout (dtype uint8). */
    val pixels: ByteArray?,
    /** Normalized float crop in the metadata's layout (dtype float32, normalization external). */
    val floats: FloatArray?,
    val shape: LongArray,
) {
    /** The `(1, 2, 3)` crop → image input of bundles with `affine_input.present`. */
    val affineInput: FloatArray get() = FloatArray(6) { cropToImage.toArray()[it].toFloat() }
}

/** What a runtime returns, already split by meaning. */
sealed class ModelOutput {
    /** Bundled decoding: `(1, K, 2)` keypoints (crop or image pixels per metadata) and `(1, K)` scores. */
    class Decoded(val keypoints: FloatArray, val scores: FloatArray) : ModelOutput()

    /** Raw head outputs `(1, K, Lx)` and `(1, K, Ly)`, decoded in the app. */
    class Simcc(val x: FloatArray, val y: FloatArray) : ModelOutput()

    companion object {
        /**
         * Assign a runtime's output tensors to their meaning by shape, since output order and
         * names differ between converters: `(1, K, 2)` keypoints and `(1, K)` scores, or
         * `(1, K, Lx)` and `(1, K, Ly)` SimCC vectors (in this order when `Lx == Ly`).
         */
        fun fromTensors(shapes: List<LongArray>, data: List<FloatArray>, metadata: ModelMetadata): ModelOutput {
            require(shapes.size == data.size) { "${shapes.size} shapes for ${data.size} tensors" }
            val k = metadata.spec.numKeypoints.toLong()
            fun find(expected: LongArray, skip: Int = -1): Int =
                shapes.indices.firstOrNull { it != skip && shapes[it].contentEquals(expected) } ?: -1
            val got = shapes.joinToString { it.toList().toString() }
            return when (val outs = metadata.outputs) {
                is OutputsInfo.Decoded -> {
                    val ik = find(longArrayOf(1, k, 2))
                    val isc = find(longArrayOf(1, k))
                    if (ik < 0 || isc < 0) throw MetadataException("model outputs $got; metadata promises keypoints (1, $k, 2) and scores (1, $k)")
                    Decoded(data[ik], data[isc])
                }
                is OutputsInfo.Simcc -> {
                    val ix = find(longArrayOf(1, k, outs.lengthX.toLong()))
                    val iy = find(longArrayOf(1, k, outs.lengthY.toLong()), skip = ix)
                    if (ix < 0 || iy < 0) throw MetadataException("model outputs $got; metadata promises SimCC (1, $k, ${outs.lengthX}) and (1, $k, ${outs.lengthY})")
                    Simcc(data[ix], data[iy])
                }
            }
        }
    }
}

/** One frame's pose in image pixels. */
class PoseResult(
    val keypoints: DoubleArray,
    val smoothed: DoubleArray,
    val scores: FloatArray,
    val box: Box,
    val nextBox: Box,
    val lost: Boolean,
)

class PosePipeline(
    val metadata: ModelMetadata,
    val imageWidth: Int,
    val imageHeight: Int,
    roiParams: RoiParams = RoiParams(),
    filterParams: FilterParams = FilterParams(),
) {
    private val spec = metadata.spec
    val tracker = RoiTracker(imageWidth.toDouble(), imageHeight.toDouble(), torsoIndices(spec.keypointNames), roiParams)
    val filter = OneEuroFilter(2 * spec.numKeypoints, filterParams)
    private val threshold = roiParams.scoreThreshold

    fun reset() {
        tracker.reset()
        filter.reset()
    }

    /** Crop the tracked region of [frame] into the model's input tensor. */
    fun prepare(frame: RgbImage, out: ByteArray? = null): PreparedInput = prepareBox(frame, tracker.box, out)

    /** Crop [box] (a tracked ROI or a detector box, image pixels) of [frame] into the model's input tensor. */
    fun prepareBox(frame: RgbImage, box: Box, out: ByteArray? = null): PreparedInput {
        require(frame.width == imageWidth && frame.height == imageHeight) {
            "frame is ${frame.width}x${frame.height}, pipeline was built for ${imageWidth}x$imageHeight"
        }
        val input = metadata.input
        val cs = bboxXywhToCs(box, spec.inputWidth, spec.inputHeight, spec.bboxPadding)
        val imageToCrop = getWarpMatrix(cs, 0.0, spec.inputWidth, spec.inputHeight)
        val cropToImage = imageToCrop.inverse()
        val n = input.width * input.height * 3
        // An image-type input (Core ML) is filled from an interleaved RGB crop whatever the layout.
        val layout = if (input.isImage) Layout.NHWC else input.layout
        return if (input.normalizeInApp) {
            val crop = warpAffineBilinear(frame, imageToCrop, input.width, input.height, Layout.NHWC)
            val floats = normalizeImage(crop, input.width, input.height, spec.mean, spec.std, Layout.NHWC, layout)
            PreparedInput(box, cs, imageToCrop, cropToImage, null, floats, input.shape)
        } else {
            val buf = if (out != null && out.size >= n) out else ByteArray(n)
            warpAffineBilinear(frame, imageToCrop, input.width, input.height, layout, buf)
            PreparedInput(box, cs, imageToCrop, cropToImage, buf, null, input.shape)
        }
    }

    /** Turn the model's output for [prepared] into an image-pixel pose and advance the tracker. */
    fun finish(prepared: PreparedInput, output: ModelOutput, timestampSeconds: Double): PoseResult {
        val k = spec.numKeypoints
        val (image, scores) = imageKeypoints(prepared, output)
        val valid = BooleanArray(k) { scores[it].toDouble() > threshold }
        val smoothed = filter.filterKeypoints(image, timestampSeconds, valid)
        val next = tracker.update(image, scores)
        return PoseResult(image, smoothed, scores, prepared.box, next, tracker.lost)
    }

    /** The model's output for [prepared] as image-pixel keypoints `[x0, y0, ...]` and scores. */
    fun imageKeypoints(prepared: PreparedInput, output: ModelOutput): Pair<DoubleArray, FloatArray> {
        val k = spec.numKeypoints
        return when (output) {
            is ModelOutput.Decoded -> {
                require(output.keypoints.size == 2 * k && output.scores.size == k) { "decoded output is not $k keypoints" }
                val kp = Keypoints(output.keypoints, output.scores)
                val units = (metadata.outputs as? OutputsInfo.Decoded)?.units ?: KeypointUnits.CROP_PIXELS
                val xy = if (units == KeypointUnits.IMAGE_PIXELS) DoubleArray(2 * k) { kp.xy[it].toDouble() } else keypointsToImage(kp, prepared.cropToImage)
                Pair(xy, kp.scores)
            }
            is ModelOutput.Simcc -> {
                val kp = decodeSimcc(output.x, output.y, k, spec.simccSplitRatio)
                Pair(keypointsToImage(kp, prepared.cropToImage), kp.scores)
            }
        }
    }
}

/** One tracked person's pose this frame. */
class PersonPose(val trackId: Int, val keypoints: DoubleArray, val smoothed: DoubleArray, val scores: FloatArray, val box: Box,
                 val boxScore: Double)

/**
 * Everyone in the frame: detector → crops → pose for up to `maxPeople` people, each followed by
 * ROI tracking between detections ([MultiPersonTracker], the loop of `predict` on video):
 *
 *   if [needsDetection]: [detector].prepare(frame) → [the detector artifact] → [onDetections]
 *   [preparePeople](frame) → [the pose artifact, once per person] → [finishPeople]
 */
class PeoplePipeline(
    val pose: PosePipeline,
    val detector: PersonDetectorStep,
    val maxPeople: Int = 5,
    detectEvery: Int = 5,
    roiParams: RoiParams = RoiParams(),
    val filterParams: FilterParams? = FilterParams(),
) {
    private val spec = pose.metadata.spec
    private val threshold = roiParams.scoreThreshold
    val tracker = MultiPersonTracker(
        pose.imageWidth.toDouble(), pose.imageHeight.toDouble(), torsoIndices(spec.keypointNames), roiParams,
        MultiTrackParams(detectEvery = detectEvery, maxPeople = maxPeople), filterParams, 2 * spec.numKeypoints,
    )

    fun needsDetection(): Boolean = tracker.due()

    /** The detector artifact's outputs for this frame (letterboxed by [detector].prepare). */
    fun onDetections(boxes: FloatArray, scores: FloatArray, lb: Letterbox): List<Detection> {
        val found = detector.finish(boxes, scores, lb, pose.imageWidth, pose.imageHeight, maxPeople)
        tracker.assign(found.map { it.box }, found.map { it.score })
        return found
    }

    /** One pose-model input per followed person, in [MultiPersonTracker.tracks] order. */
    fun preparePeople(frame: RgbImage): List<Pair<Track, PreparedInput>> = tracker.tracks.map { Pair(it, pose.prepareBox(frame, it.box)) }

    /** The pose outputs of [prepared] (same order) → smoothed poses; advances the tracker. */
    fun finishPeople(prepared: List<Pair<Track, PreparedInput>>, outputs: List<ModelOutput>, timestampSeconds: Double): List<PersonPose> {
        require(prepared.size == outputs.size) { "${outputs.size} pose outputs for ${prepared.size} people" }
        val k = spec.numKeypoints
        val out = prepared.zip(outputs).map { (pair, output) ->
            val (track, input) = pair
            val (image, scores) = pose.imageKeypoints(input, output)
            val valid = BooleanArray(k) { scores[it].toDouble() > threshold }
            val smoothed = track.filter?.filterKeypoints(image, timestampSeconds, valid) ?: image
            tracker.update(track, image, scores)
            PersonPose(track.id, image, smoothed, scores, input.box, track.score)
        }
        tracker.advance()
        return out
    }
}

/** Frames per second and model latency as exponential moving averages, for the overlay. */
class FrameStats(private val smoothing: Double = 0.1) {
    var fps: Double = 0.0
        private set
    var latencyMs: Double = 0.0
        private set
    private var lastNs: Long = Long.MIN_VALUE

    fun onFrame(timestampNs: Long, latencyMs: Double) {
        if (lastNs != Long.MIN_VALUE && timestampNs > lastNs) {
            val instant = 1e9 / (timestampNs - lastNs).toDouble()
            fps = if (fps == 0.0) instant else fps + smoothing * (instant - fps)
        }
        lastNs = timestampNs
        this.latencyMs = if (this.latencyMs == 0.0) latencyMs else this.latencyMs + smoothing * (latencyMs - this.latencyMs)
    }
}
