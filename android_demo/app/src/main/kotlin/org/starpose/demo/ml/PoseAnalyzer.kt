package org.starpose.demo.ml

import android.os.SystemClock
import androidx.camera.core.ImageAnalysis
import androidx.camera.core.ImageProxy
import org.starpose.core.DrawList
import org.starpose.core.FrameStats
import org.starpose.core.ModelOutput
import org.starpose.core.PeoplePipeline
import org.starpose.core.PersonDetectorStep
import org.starpose.core.PersonPose
import org.starpose.core.PosePipeline
import org.starpose.core.PoseResult
import org.starpose.core.skeletonDrawList
import org.starpose.demo.camera.FrameConverter

/** Smoothed frame rate and model latency, and this frame's total processing time. */
data class PoseMetrics(val fps: Double, val modelMs: Double, val frameMs: Double)

/** Everything the overlay draws for one frame: one tracked [pose], or every person in [people]. */
class FrameResult(
    val pose: PoseResult?,
    val drawList: DrawList?,
    val people: List<Pair<PersonPose, DrawList>> = emptyList(),
    val imageWidth: Int,
    val imageHeight: Int,
    val runtime: String,
    val keypointNames: List<String>,
    val metrics: PoseMetrics,
)

/**
 * The analysis loop on CameraX's executor thread: frame → [PosePipeline.prepare] → the current
 * [PoseEstimator] → [PosePipeline.finish] → [onResult]. With a [PersonDetector] (exported next to
 * the pose model) every person is followed instead: [PeoplePipeline] runs the detector every few
 * frames, crops each tracked person and runs the pose model once per person. The runtimes are
 * swapped with [setEstimator], which runs on the same executor, so none is closed mid-inference.
 */
class PoseAnalyzer(
    private val onResult: (FrameResult) -> Unit,
    private val onError: (Throwable) -> Unit,
) : ImageAnalysis.Analyzer {
    private var estimator: PoseEstimator? = null
    private var detector: PersonDetector? = null
    private var pipeline: PosePipeline? = null
    private var people: PeoplePipeline? = null
    private var detectorBuffer: ByteArray? = null
    private val converter = FrameConverter()
    private val stats = FrameStats()
    private var inputBuffer: ByteArray? = null

    /** Must be called on the analysis executor. */
    fun setEstimator(next: PoseEstimator?, nextDetector: PersonDetector? = null) {
        estimator?.close()
        detector?.close()
        estimator = next
        detector = nextDetector
        pipeline = null
        people = null
    }

    /** Up to this many people are followed when a detector is loaded. */
    var maxPeople: Int = 5

    override fun analyze(image: ImageProxy) {
        image.use {
            val est = estimator ?: return
            try {
                val frame = converter.convert(image)
                val pl = pipeline?.takeIf { p -> p.imageWidth == frame.width && p.imageHeight == frame.height }
                    ?: PosePipeline(est.metadata, frame.width, frame.height).also { p -> pipeline = p }
                val start = SystemClock.elapsedRealtimeNanos()
                detector?.let { det ->
                    analyzePeople(frame, pl, det, est, image.imageInfo.timestamp, start)
                    return
                }
                val prepared = pl.prepare(frame, inputBuffer)
                inputBuffer = prepared.pixels
                val modelStart = SystemClock.elapsedRealtimeNanos()
                val output = est.run(prepared)
                val modelEnd = SystemClock.elapsedRealtimeNanos()
                val pose = pl.finish(prepared, output, image.imageInfo.timestamp / 1e9)
                val end = SystemClock.elapsedRealtimeNanos()
                stats.onFrame(image.imageInfo.timestamp, (modelEnd - modelStart) / 1e6)
                val spec = est.metadata.spec
                onResult(
                    FrameResult(
                        pose = pose,
                        drawList = skeletonDrawList(pose.scores, spec.skeleton, spec.keypointNames),
                        imageWidth = frame.width,
                        imageHeight = frame.height,
                        runtime = est.name,
                        keypointNames = spec.keypointNames,
                        metrics = PoseMetrics(stats.fps, stats.latencyMs, (end - start) / 1e6),
                    ),
                )
            } catch (e: Exception) {
                onError(e)
            }
        }
    }

    private fun analyzePeople(frame: org.starpose.core.RgbImage, pl: PosePipeline, det: PersonDetector, est: PoseEstimator,
                              timestampNs: Long, start: Long) {
        val pp = people?.takeIf { it.pose === pl }
            ?: PeoplePipeline(pl, PersonDetectorStep(det.metadata), maxPeople).also { people = it }
        var modelNs = 0L
        if (pp.needsDetection()) {
            val (pixels, lb) = pp.detector.prepare(frame, detectorBuffer)
            detectorBuffer = pixels
            val t0 = SystemClock.elapsedRealtimeNanos()
            val (boxes, scores) = det.run(pixels)
            modelNs += SystemClock.elapsedRealtimeNanos() - t0
            pp.onDetections(boxes, scores, lb)
        }
        val prepared = pp.preparePeople(frame)
        val outputs = ArrayList<ModelOutput>(prepared.size)
        for ((_, input) in prepared) {
            val t0 = SystemClock.elapsedRealtimeNanos()
            outputs.add(est.run(input))
            modelNs += SystemClock.elapsedRealtimeNanos() - t0
        }
        val poses = pp.finishPeople(prepared, outputs, timestampNs / 1e9)
        val end = SystemClock.elapsedRealtimeNanos()
        stats.onFrame(timestampNs, modelNs / 1e6)
        val spec = est.metadata.spec
        onResult(
            FrameResult(
                pose = null,
                drawList = null,
                people = poses.map { Pair(it, skeletonDrawList(it.scores, spec.skeleton, spec.keypointNames)) },
                imageWidth = frame.width,
                imageHeight = frame.height,
                runtime = "${est.name} + detector",
                keypointNames = spec.keypointNames,
                metrics = PoseMetrics(stats.fps, stats.latencyMs, (end - start) / 1e6),
            ),
        )
    }
}
