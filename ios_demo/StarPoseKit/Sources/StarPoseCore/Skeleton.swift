import Foundation

/// Which side of the body a keypoint or bone is on, for colouring.
public enum Side: String, Equatable {
    case left
    case right
    case center

    /// From a keypoint name: `left_*`, `right_*`, anything else is the centre line.
    public static func of(_ name: String) -> Side {
        if name.hasPrefix("left_") { return .left }
        if name.hasPrefix("right_") { return .right }
        return .center
    }
}

public struct DrawPoint: Equatable {
    public let index: Int
    public let side: Side
}

public struct DrawLine: Equatable {
    public let a: Int
    public let b: Int
    public let side: Side
}

/// What to draw for one pose; coordinates stay with the caller, which maps them to the view.
public struct DrawList: Equatable {
    public let points: [DrawPoint]
    public let lines: [DrawLine]
}

/// Visible keypoints (score above `threshold`, index order) and the skeleton bones with both ends
/// visible (spec order), each with its side (`skeleton_draw_list` in tracking.py).
public func skeletonDrawList(scores: [Float], skeleton: [[Int]], keypointNames: [String], threshold: Double = 0.3) -> DrawList {
    let visible = scores.map { Double($0) > threshold }
    let sides = keypointNames.map(Side.of)
    let points = scores.indices.filter { visible[$0] }.map { DrawPoint(index: $0, side: sides[$0]) }
    let lines = skeleton.filter { visible[$0[0]] && visible[$0[1]] }.map { pair -> DrawLine in
        let (a, b) = (pair[0], pair[1])
        return DrawLine(a: a, b: b, side: sides[a] == sides[b] ? sides[a] : .center)
    }
    return DrawList(points: points, lines: lines)
}
