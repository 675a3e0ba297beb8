package org.starpose.core

import kotlin.math.cos
import kotlin.math.sin

/**
 * Boxes, centre/scale and 2x3 affine matrices: a line-by-line port of starpose/processing.py
 * (`bbox_xywh_to_cs`, `fix_aspect_ratio`, `get_warp_matrix`, `invert_affine`, `apply_affine`).
 * Everything is Double, as in the numpy reference, so the ports agree to a few ulps.
 */

/** A box `(x, y, w, h)` in image pixels. */
data class Box(val x: Double, val y: Double, val w: Double, val h: Double) {
    fun toArray(): DoubleArray = doubleArrayOf(x, y, w, h)

    companion object {
        fun of(v: DoubleArray): Box = Box(v[0], v[1], v[2], v[3])

        /** Box from corners `(x1, y1, x2, y2)`. */
        fun fromXyxy(x1: Double, y1: Double, x2: Double, y2: Double): Box = Box(x1, y1, x2 - x1, y2 - y1)
    }
}

/** The person region as MMPose describes it: box centre and padded, aspect-fixed box size. */
data class CenterScale(val cx: Double, val cy: Double, val sw: Double, val sh: Double)

/** Grow the shorter side of `(w, h)` so that `w / h == aspectRatio`. */
fun fixAspectRatio(w: Double, h: Double, aspectRatio: Double): Pair<Double, Double> =
    if (w > h * aspectRatio) Pair(w, w / aspectRatio) else Pair(h * aspectRatio, h)

/**
 * Box → centre/scale; the scale is the box size times [padding], widened to the model's aspect
 * ratio `inputW / inputH` when those are given (MMPose's TopdownAffine).
 */
fun bboxXywhToCs(box: Box, inputW: Int? = null, inputH: Int? = null, padding: Double = 1.25): CenterScale {
    val cx = box.x + box.w * 0.5
    val cy = box.y + box.h * 0.5
    var sw = box.w * padding
    var sh = box.h * padding
    if (inputW != null && inputH != null) {
        val (fw, fh) = fixAspectRatio(sw, sh, inputW.toDouble() / inputH.toDouble())
        sw = fw
        sh = fh
    }
    return CenterScale(cx, cy, sw, sh)
}

/** Corner box `(x1, y1, x2, y2)` → centre/scale. */
fun bboxXyxyToCs(x1: Double, y1: Double, x2: Double, y2: Double, inputW: Int? = null, inputH: Int? = null, padding: Double = 1.25): CenterScale =
    bboxXywhToCs(Box.fromXyxy(x1, y1, x2, y2), inputW, inputH, padding)

/** A 2x3 affine `[a b c; d e f]` acting on column vectors `[x, y, 1]`. */
class Affine(val a: Double, val b: Double, val c: Double, val d: Double, val e: Double, val f: Double) {
    fun mapX(x: Double, y: Double): Double = a * x + b * y + c

    fun mapY(x: Double, y: Double): Double = d * x + e * y + f

    /** Map interleaved points `[x0, y0, x1, y1, ...]`. */
    fun apply(points: DoubleArray): DoubleArray {
        require(points.size % 2 == 0) { "points must be interleaved x, y pairs" }
        val out = DoubleArray(points.size)
        for (k in 0 until points.size / 2) {
            val x = points[2 * k]
            val y = points[2 * k + 1]
            out[2 * k] = mapX(x, y)
            out[2 * k + 1] = mapY(x, y)
        }
        return out
    }

    /** Inverse map; throws for a singular matrix (a zero-size box). */
    fun inverse(): Affine {
        val det = a * e - b * d
        require(det != 0.0 && det.isFinite()) { "affine matrix is singular" }
        val ia = e / det
        val ib = -b / det
        val id = -d / det
        val ie = a / det
        return Affine(ia, ib, -(ia * c + ib * f), id, ie, -(id * c + ie * f))
    }

    /** `other ∘ this`: first this map, then [other]. */
    fun then(other: Affine): Affine = Affine(
        other.a * a + other.b * d, other.a * b + other.b * e, other.a * c + other.b * f + other.c,
        other.d * a + other.e * d, other.d * b + other.e * e, other.d * c + other.e * f + other.f,
    )

    /** Row-major `[a, b, c, d, e, f]`, the layout of a `(1, 2, 3)` model input. */
    fun toArray(): DoubleArray = doubleArrayOf(a, b, c, d, e, f)

    override fun toString(): String = "Affine[[$a, $b, $c], [$d, $e, $f]]"

    companion object {
        val IDENTITY = Affine(1.0, 0.0, 0.0, 0.0, 1.0, 0.0)

        fun of(rowMajor: DoubleArray): Affine {
            require(rowMajor.size == 6) { "a 2x3 affine needs 6 values, got ${rowMajor.size}" }
            return Affine(rowMajor[0], rowMajor[1], rowMajor[2], rowMajor[3], rowMajor[4], rowMajor[5])
        }

        /**
         * Image → view map of a preview scaled to fill a view and centre-cropped (CameraX
         * PreviewView FILL_CENTER, SwiftUI aspectFill); [mirror] flips horizontally (front camera).
         */
        fun fillCenter(imageW: Double, imageH: Double, viewW: Double, viewH: Double, mirror: Boolean = false): Affine {
            val s = maxOf(viewW / imageW, viewH / imageH)
            val dx = (viewW - imageW * s) / 2.0
            val dy = (viewH - imageH * s) / 2.0
            return if (mirror) Affine(-s, 0.0, viewW - dx, 0.0, s, dy) else Affine(s, 0.0, dx, 0.0, s, dy)
        }
    }
}

/**
 * The 2x3 map from the box (centre, scale; rotated by [rotDeg] degrees) onto an `outW x outH`
 * crop, or with [inverse] the crop → image map. Same closed form as `get_warp_matrix`.
 */
fun getWarpMatrix(cs: CenterScale, rotDeg: Double, outW: Int, outH: Int, inverse: Boolean = false): Affine {
    val s = outW.toDouble() / cs.sw
    val theta = Math.toRadians(rotDeg)
    val c = cos(theta)
    val sn = sin(theta)
    val a00 = c * s
    val a01 = sn * s
    val a10 = -sn * s
    val a11 = c * s
    val tx = outW * 0.5 - (a00 * cs.cx + a01 * cs.cy)
    val ty = outH * 0.5 - (a10 * cs.cx + a11 * cs.cy)
    val m = Affine(a00, a01, tx, a10, a11, ty)
    return if (inverse) m.inverse() else m
}
