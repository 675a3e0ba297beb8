package org.starpose.core

/** Which side of the body a keypoint or bone is on, for colouring. */
enum class Side(val label: String) {
    LEFT("left"),
    RIGHT("right"),
    CENTER("center");

    companion object {
        /** From a keypoint name: `left_*`, `right_*`, anything else is the centre line. */
        fun of(name: String): Side = when {
            name.startsWith("left_") -> LEFT
            name.startsWith("right_") -> RIGHT
            else -> CENTER
        }
    }
}

data class DrawPoint(val index: Int, val side: Side)

data class DrawLine(val a: Int, val b: Int, val side: Side)

/** What to draw for one pose; coordinates stay with the caller, which maps them to the view. */
class DrawList(val points: List<DrawPoint>, val lines: List<DrawLine>)

/**
 * Visible keypoints (score above [threshold], index order) and the skeleton bones with both ends
 * visible (spec order), each with its side (`skeleton_draw_list` in tracking.py).
 */
fun skeletonDrawList(scores: FloatArray, skeleton: List<IntArray>, keypointNames: List<String>, threshold: Double = 0.3): DrawList {
    val visible = BooleanArray(scores.size) { scores[it].toDouble() > threshold }
    val sides = keypointNames.map { Side.of(it) }
    val points = (scores.indices).filter { visible[it] }.map { DrawPoint(it, sides[it]) }
    val lines = skeleton.filter { visible[it[0]] && visible[it[1]] }.map { (a, b) ->
        DrawLine(a, b, if (sides[a] == sides[b]) sides[a] else Side.CENTER)
    }
    return DrawList(points, lines)
}
