package org.starpose.demo.ml

import android.os.SystemClock
import androidx.camera.core.ImageAnalysis
import androidx.camera.core.ImageProxy
import org.starpose.core.DrawList
import org.starpose.core.FrameStats
import org.starpose.core.PosePipeline
import org.starpose.core.PoseResult
import org.starpose.core.skeletonDrawList
import org.starpose.demo.camera.FrameConverter

/** Smoothed frame rate and model latency, and this frame's total processing time. */
data class PoseMetrics(val fps: Double, val modelMs: Double, val frameMs: Double)

/** Everything the overlay draws for one frame. */
class FrameResult(
    val pose: PoseResult,
    val drawList: DrawList,
    val imageWidth: Int,
    val imageHeight: Int,
    val runtime: String,
    val keypointNames: List<String>,
    val metrics: PoseMetrics,
)

/**
 * The analysis loop on CameraX's executor thread: frame → [PosePipeline.prepare] → the current
 * [PoseEstimator] → [PosePipeline.finish] → [onResult]. The estimator is swapped with
 * [setEstimator], which runs on the same executor, so a runtime is never closed mid-inference.
 */
class PoseAnalyzer(
    private val onResult: (FrameResult) -> Unit,
    private val onError: (Throwable) -> Unit,
) : ImageAnalysis.Analyzer {
    private var estimator: PoseEstimator? = null
    private var pipeline: PosePipeline? = null
    private val converter = FrameConverter()
    private val stats = FrameStats()
    private var inputBuffer: ByteArray? = null

    /** Must be called on the analysis executor. */
    fun setEstimator(next: PoseEstimator?) {
        estimator?.close()
        estimator = next
        pipeline = null
    }

    override fun analyze(image: ImageProxy) {
        image.use {
            val est = estimator ?: return
            try {
                val frame = converter.convert(image)
                val pl = pipeline?.takeIf { p -> p.imageWidth == frame.width && p.imageHeight == frame.height }
                    ?: PosePipeline(est.metadata, frame.width, frame.height).also { p -> pipeline = p }
                val start = SystemClock.elapsedRealtimeNanos()
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
}
