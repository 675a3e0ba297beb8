package org.starpose.core

import kotlin.math.PI
import kotlin.math.abs

/**
 * Port of starpose/tracking.py: One Euro smoothing and MoveNet-style single-person ROI tracking.
 * See that module for the reasoning; the arithmetic here follows it operation by operation.
 */

/** One Euro filter parameters: rest cutoff (Hz), speed coefficient, speed cutoff (Hz). */
data class FilterParams(val minCutoff: Double = 1.0, val beta: Double = 0.01, val dCutoff: Double = 1.0) {
    init {
        require(minCutoff > 0 && dCutoff > 0 && beta >= 0) {
            "OneEuroFilter: need min_cutoff > 0, d_cutoff > 0, beta >= 0; got $minCutoff, $dCutoff, $beta"
        }
    }
}

private fun smoothingFactor(dt: Double, cutoff: Double): Double {
    val r = 2.0 * PI * cutoff * dt
    return r / (r + 1.0)
}

/**
 * One Euro filter over [size] values, element-wise; an invalid element passes through and
 * restarts when valid again (`OneEuroFilter` in tracking.py).
 */
class OneEuroFilter(val size: Int, val params: FilterParams = FilterParams()) {
    private val x = DoubleArray(size)
    private val dx = DoubleArray(size)
    private val t = DoubleArray(size) { Double.NaN }
    private var lastT = Double.NaN

    fun reset() {
        x.fill(0.0)
        dx.fill(0.0)
        t.fill(Double.NaN)
        lastT = Double.NaN
    }

    /** Filter [sample] taken at [timestamp] seconds; [valid] is per element (null: all valid). */
    fun filter(sample: DoubleArray, timestamp: Double, valid: BooleanArray? = null): DoubleArray {
        require(sample.size == size) { "OneEuroFilter: sample of ${sample.size} values, filter of $size; call reset() when the keypoint layout changes" }
        require(valid == null || valid.size == size) { "valid mask of ${valid?.size} for $size values" }
        require(lastT.isNaN() || timestamp > lastT) { "OneEuroFilter: timestamps must increase, got $timestamp after $lastT" }
        lastT = timestamp
        val out = sample.copyOf()
        for (k in 0 until size) {
            if (valid != null && !valid[k]) {
                t[k] = Double.NaN
                continue
            }
            if (t[k].isNaN()) {
                dx[k] = 0.0
            } else {
                val dt = timestamp - t[k]
                val xPrev = x[k]
                val speed = (sample[k] - xPrev) / dt
                val aD = smoothingFactor(dt, params.dCutoff)
                val dxHat = aD * speed + (1.0 - aD) * dx[k]
                val cutoff = params.minCutoff + params.beta * abs(dxHat)
                val a = smoothingFactor(dt, cutoff)
                out[k] = a * sample[k] + (1.0 - a) * xPrev
                dx[k] = dxHat
            }
            x[k] = out[k]
            t[k] = timestamp
        }
        return out
    }

    /** Interleaved keypoints `[x0, y0, ...]` with one validity flag per keypoint. */
    fun filterKeypoints(xy: DoubleArray, timestamp: Double, validPerKeypoint: BooleanArray): DoubleArray =
        filter(xy, timestamp, BooleanArray(xy.size) { validPerKeypoint[it / 2] })
}

/** The keypoint names that define the torso: left/right shoulder, left/right hip. */
val TORSO_NAMES = listOf("left_shoulder", "right_shoulder", "left_hip", "right_hip")

/** Indices of the torso keypoints in a layout; fails naming the missing ones. */
fun torsoIndices(keypointNames: List<String>): IntArray {
    val missing = TORSO_NAMES.filter { it !in keypointNames }
    require(missing.isEmpty()) { "keypoint layout has no ${missing.joinToString(", ")}: cannot track a torso" }
    return IntArray(4) { keypointNames.indexOf(TORSO_NAMES[it]) }
}

/** ROI parameters, defaults as in tracking.py. */
data class RoiParams(val scoreThreshold: Double = 0.3, val torsoFactor: Double = 1.5, val bodyFactor: Double = 1.2)

fun fullFrameBox(imageW: Double, imageH: Double): Box = Box(0.0, 0.0, imageW, imageH)

/**
 * Next frame's person box from this frame's keypoints (image pixels), or null when the torso is
 * not visible (`roi_from_keypoints`): centred on the visible hips, per-axis half-extent =
 * max(torso extent x torsoFactor, body extent x bodyFactor), clamped to the farthest border,
 * the full frame when it spans the image on both axes.
 */
fun roiFromKeypoints(xy: DoubleArray, scores: FloatArray, imageW: Double, imageH: Double, torso: IntArray, params: RoiParams = RoiParams()): Box? {
    val n = scores.size
    val visible = BooleanArray(n) { scores[it].toDouble() > params.scoreThreshold }
    val shoulders = (0..1).map { torso[it] }.filter { visible[it] }
    val hips = (2..3).map { torso[it] }.filter { visible[it] }
    if (shoulders.isEmpty() || hips.isEmpty()) return null
    var cx = 0.0
    var cy = 0.0
    for (i in hips) {
        cx += xy[2 * i]
        cy += xy[2 * i + 1]
    }
    cx /= hips.size
    cy /= hips.size
    var torsoX = 0.0
    var torsoY = 0.0
    for (i in shoulders + hips) {
        torsoX = maxOf(torsoX, abs(xy[2 * i] - cx))
        torsoY = maxOf(torsoY, abs(xy[2 * i + 1] - cy))
    }
    var bodyX = 0.0
    var bodyY = 0.0
    for (i in 0 until n) {
        if (!visible[i]) continue
        bodyX = maxOf(bodyX, abs(xy[2 * i] - cx))
        bodyY = maxOf(bodyY, abs(xy[2 * i + 1] - cy))
    }
    var hx = maxOf(torsoX * params.torsoFactor, bodyX * params.bodyFactor)
    var hy = maxOf(torsoY * params.torsoFactor, bodyY * params.bodyFactor)
    hx = minOf(hx, maxOf(cx, imageW - cx))
    hy = minOf(hy, maxOf(cy, imageH - cy))
    if (!(hx > 0 && hy > 0)) return null
    if (hx >= imageW / 2 && hy >= imageH / 2) return fullFrameBox(imageW, imageH)
    return Box(cx - hx, cy - hy, 2 * hx, 2 * hy)
}

/** Single-person ROI tracking: full frame until a torso is seen, then follow the keypoints. */
class RoiTracker(val imageW: Double, val imageH: Double, val torso: IntArray, val params: RoiParams = RoiParams()) {
    /** The region to crop in the next frame. */
    var box: Box = fullFrameBox(imageW, imageH)
        private set

    /** True while [box] is the full-frame fallback because no torso was visible. */
    var lost: Boolean = true
        private set

    fun reset() {
        box = fullFrameBox(imageW, imageH)
        lost = true
    }

    /** Take this frame's unsmoothed keypoints (image pixels) and scores; return the next box. */
    fun update(xy: DoubleArray, scores: FloatArray): Box {
        val roi = roiFromKeypoints(xy, scores, imageW, imageH, torso, params)
        lost = roi == null
        box = roi ?: fullFrameBox(imageW, imageH)
        return box
    }
}

/** IoU of two `(x, y, w, h)` boxes; 0 when the union is empty (`box_iou_xywh`). */
fun boxIouXywh(a: Box, b: Box): Double {
    val iw = maxOf(0.0, minOf(a.x + a.w, b.x + b.w) - maxOf(a.x, b.x))
    val ih = maxOf(0.0, minOf(a.y + a.h, b.y + b.h) - maxOf(a.y, b.y))
    val inter = iw * ih
    val union = maxOf(a.w, 0.0) * maxOf(a.h, 0.0) + maxOf(b.w, 0.0) * maxOf(b.h, 0.0) - inter
    return if (union > 0) inter / union else 0.0
}

/**
 * `match_by_iou`: greedy one-to-one matching; pairs with IoU >= [iouThreshold] taken by
 * descending IoU (ties: lower track, then lower detection index). Returns (track, detection).
 */
fun matchByIou(tracks: List<Box>, detections: List<Box>, iouThreshold: Double = 0.3): List<Pair<Int, Int>> {
    data class Cand(val iou: Double, val t: Int, val d: Int)
    val cands = ArrayList<Cand>()
    for ((t, tb) in tracks.withIndex()) for ((d, db) in detections.withIndex()) {
        val v = boxIouXywh(tb, db)
        if (v >= iouThreshold) cands.add(Cand(v, t, d))
    }
    cands.sortWith(compareByDescending<Cand> { it.iou }.thenBy { it.t }.thenBy { it.d })
    val usedT = HashSet<Int>()
    val usedD = HashSet<Int>()
    val out = ArrayList<Pair<Int, Int>>()
    for (c in cands) {
        if (c.t in usedT || c.d in usedD) continue
        usedT.add(c.t)
        usedD.add(c.d)
        out.add(Pair(c.t, c.d))
    }
    return out
}

/** One followed person (`Track`): stable id, next crop box, last pose, own One Euro filter. */
class Track(val id: Int, var box: Box, var score: Double, val filter: OneEuroFilter?) {
    var keypoints: DoubleArray? = null
    var scores: FloatArray? = null
    var lost: Boolean = false
}

/** Multi-person tracker parameters, defaults as in tracking.py. */
data class MultiTrackParams(
    val detectEvery: Int = 5,
    val maxPeople: Int = 5,
    val iouThreshold: Double = 0.3,
    val duplicateIou: Double = 0.6,
) {
    init {
        require(detectEvery >= 1 && maxPeople >= 1) { "detect_every and max_people must be >= 1, got $detectEvery, $maxPeople" }
    }
}

/**
 * `MultiPersonTracker`: a detector every [MultiTrackParams.detectEvery] frames (and when a track
 * was lost or nobody is followed), IoU matching to the tracks, ROI tracking in between. Per
 * frame: [due] → (detector → [assign]) → crop every [tracks] box → [update] each → [advance].
 */
class MultiPersonTracker(
    val imageW: Double,
    val imageH: Double,
    val torso: IntArray,
    val roiParams: RoiParams = RoiParams(),
    val params: MultiTrackParams = MultiTrackParams(),
    /** One Euro parameters of each track's filter, null for none; [numValues] values per pose. */
    val filterParams: FilterParams? = FilterParams(),
    val numValues: Int = 34,
) {
    var tracks: List<Track> = emptyList()
        private set
    var frame: Int = 0
        private set
    private var nextId = 0
    private var sinceDetection: Int? = null
    private var force = true

    fun due(): Boolean = force || tracks.isEmpty() || sinceDetection == null || sinceDetection!! >= params.detectEvery

    /** This frame's detections, best first: match, start and drop tracks. */
    fun assign(boxes: List<Box>, scores: List<Double>? = null) {
        val sc = scores ?: List(boxes.size) { 1.0 }
        val pairs = matchByIou(tracks.map { it.box }, boxes, params.iouThreshold)
        val kept = ArrayList<Track>()
        for ((t, d) in pairs) {
            val track = tracks[t]
            track.box = boxes[d]
            track.score = sc[d]
            track.lost = false
            kept.add(track)
        }
        val taken = pairs.map { it.second }.toSet()
        for (d in boxes.indices) {
            if (d in taken || kept.size >= params.maxPeople) continue
            kept.add(Track(nextId, boxes[d], sc[d], filterParams?.let { OneEuroFilter(numValues, it) }))
            nextId++
        }
        tracks = kept.sortedBy { it.id }
        sinceDetection = 0
        force = false
    }

    /** This frame's unsmoothed keypoints of [track]: its next box, or lost. */
    fun update(track: Track, xy: DoubleArray, scores: FloatArray) {
        track.keypoints = xy.copyOf()
        track.scores = scores.copyOf()
        val roi = roiFromKeypoints(xy, scores, imageW, imageH, torso, roiParams)
        track.lost = roi == null
        if (roi != null) track.box = roi
    }

    /** End the frame: drop lost and duplicate tracks, count frames since the last detection. */
    fun advance() {
        if (tracks.any { it.lost }) force = true
        val alive = tracks.filter { !it.lost }
        val mean = alive.associate { t -> t.id to (t.scores?.let { s -> s.sumOf { it.toDouble() } / s.size } ?: 0.0) }
        val drop = HashSet<Int>()
        for (i in alive.indices) for (j in i + 1 until alive.size) {
            val a = alive[i]
            val b = alive[j]
            if (a.id in drop || b.id in drop) continue
            if (boxIouXywh(a.box, b.box) > params.duplicateIou) {
                val ma = mean.getValue(a.id)
                val mb = mean.getValue(b.id)
                drop.add(if (mb < ma || (mb == ma && b.id > a.id)) b.id else a.id)
            }
        }
        tracks = alive.filter { it.id !in drop }
        frame++
        sinceDetection = sinceDetection?.plus(1)
    }
}
