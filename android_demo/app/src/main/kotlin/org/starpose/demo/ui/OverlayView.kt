package org.starpose.demo.ui

import android.content.Context
import android.graphics.Canvas
import android.graphics.Color
import android.graphics.Paint
import android.util.AttributeSet
import android.view.View
import org.starpose.core.Affine
import org.starpose.core.DrawList
import org.starpose.core.Side
import org.starpose.demo.ml.FrameResult
import java.util.Locale

/**
 * Draws the smoothed skeleton(s) over the FILL_CENTER preview: bones and joints coloured by side,
 * each joint's score, and the runtime, FPS and latency.
 */
class OverlayView @JvmOverloads constructor(context: Context, attrs: AttributeSet? = null) : View(context, attrs) {
    private var result: FrameResult? = null
    private var message: String? = null
    private val density = resources.displayMetrics.density
    private val bone = Paint(Paint.ANTI_ALIAS_FLAG).apply { strokeWidth = 4f * density; strokeCap = Paint.Cap.ROUND }
    private val joint = Paint(Paint.ANTI_ALIAS_FLAG)
    private val label = Paint(Paint.ANTI_ALIAS_FLAG).apply { color = Color.WHITE; textSize = 10f * density; setShadowLayer(2f, 1f, 1f, Color.BLACK) }
    private val hud = Paint(Paint.ANTI_ALIAS_FLAG).apply { color = Color.WHITE; textSize = 15f * density; setShadowLayer(3f, 1f, 1f, Color.BLACK) }

    fun show(frame: FrameResult) {
        result = frame
        message = null
        invalidate()
    }

    fun showMessage(text: String) {
        message = text
        result = null
        invalidate()
    }

    private fun colorOf(side: Side): Int = when (side) {
        Side.LEFT -> Color.rgb(0, 200, 120)
        Side.RIGHT -> Color.rgb(255, 140, 0)
        Side.CENTER -> Color.rgb(80, 160, 255)
    }

    private fun drawSkeleton(canvas: Canvas, xy: DoubleArray, scores: FloatArray, drawList: DrawList) {
        for (line in drawList.lines) {
            bone.color = colorOf(line.side)
            canvas.drawLine(xy[2 * line.a].toFloat(), xy[2 * line.a + 1].toFloat(), xy[2 * line.b].toFloat(), xy[2 * line.b + 1].toFloat(), bone)
        }
        for (p in drawList.points) {
            val px = xy[2 * p.index].toFloat()
            val py = xy[2 * p.index + 1].toFloat()
            joint.color = colorOf(p.side)
            canvas.drawCircle(px, py, 5f * density, joint)
            canvas.drawText(String.format(Locale.US, "%.2f", scores[p.index]), px + 7f * density, py - 4f * density, label)
        }
    }

    override fun onDraw(canvas: Canvas) {
        super.onDraw(canvas)
        var y = 28f * density
        message?.let {
            canvas.drawText(it, 16f * density, y, hud)
            return
        }
        val r = result ?: return
        val toView = Affine.fillCenter(r.imageWidth.toDouble(), r.imageHeight.toDouble(), width.toDouble(), height.toDouble())
        r.pose?.let { pose -> r.drawList?.let { drawSkeleton(canvas, toView.apply(pose.smoothed), pose.scores, it) } }
        for ((person, drawList) in r.people) drawSkeleton(canvas, toView.apply(person.smoothed), person.scores, drawList)
        val m = r.metrics
        val state = r.pose?.let { if (it.lost) "searching (full frame)" else "tracking" } ?: "${r.people.size} people"
        for (text in listOf(
            r.runtime,
            String.format(Locale.US, "%.1f FPS   model %.1f ms   frame %.1f ms", m.fps, m.modelMs, m.frameMs),
            state,
        )) {
            canvas.drawText(text, 16f * density, y, hud)
            y += 20f * density
        }
    }
}
