package org.starpose.core

/** K keypoints: interleaved `[x0, y0, x1, y1, ...]` and one score each. */
class Keypoints(val xy: FloatArray, val scores: FloatArray) {
    init {
        require(xy.size == 2 * scores.size) { "${xy.size / 2} locations for ${scores.size} scores" }
    }

    val size: Int get() = scores.size
}

/**
 * SimCC vectors → keypoints in crop pixels, the port of `decode_simcc` (MMPose
 * `get_simcc_maximum`), for artifacts exported without the bundled decoder. [simccX] is
 * `K x Lx` and [simccY] `K x Ly`, row-major. Location = argmax / split ratio (first maximum on a
 * tie); score = the smaller of the two maxima; a keypoint whose score is <= 0 gets location -1.
 * Arithmetic is float32, as in the reference, so results match exactly.
 */
fun decodeSimcc(simccX: FloatArray, simccY: FloatArray, numKeypoints: Int, splitRatio: Double): Keypoints {
    require(numKeypoints > 0 && simccX.size % numKeypoints == 0 && simccY.size % numKeypoints == 0) {
        "SimCC sizes ${simccX.size}, ${simccY.size} do not split into $numKeypoints keypoints"
    }
    val lx = simccX.size / numKeypoints
    val ly = simccY.size / numKeypoints
    val split = splitRatio.toFloat()
    val xy = FloatArray(2 * numKeypoints)
    val scores = FloatArray(numKeypoints)
    for (k in 0 until numKeypoints) {
        val (ix, mx) = argmax(simccX, k * lx, lx)
        val (iy, my) = argmax(simccY, k * ly, ly)
        val score = minOf(mx, my)
        scores[k] = score
        if (score <= 0f) {
            xy[2 * k] = -1f
            xy[2 * k + 1] = -1f
        } else {
            xy[2 * k] = ix.toFloat() / split
            xy[2 * k + 1] = iy.toFloat() / split
        }
    }
    return Keypoints(xy, scores)
}

private fun argmax(v: FloatArray, offset: Int, length: Int): Pair<Int, Float> {
    var best = 0
    var max = v[offset]
    for (j in 1 until length) {
        if (v[offset + j] > max) {
            max = v[offset + j]
            best = j
        }
    }
    return Pair(best, max)
}

/** Crop-pixel keypoints → image pixels with the crop → image matrix (`keypoints_to_image`). */
fun keypointsToImage(kp: Keypoints, cropToImage: Affine): DoubleArray =
    cropToImage.apply(DoubleArray(kp.xy.size) { kp.xy[it].toDouble() })
