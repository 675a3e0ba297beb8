import Foundation

/// K keypoints: interleaved `[x0, y0, x1, y1, ...]` and one score each.
public struct Keypoints: Equatable {
    public let xy: [Float]
    public let scores: [Float]

    public init(xy: [Float], scores: [Float]) throws {
        guard xy.count == 2 * scores.count else { throw PoseError.invalidArgument("\(xy.count / 2) locations for \(scores.count) scores") }
        self.xy = xy
        self.scores = scores
    }

    public var count: Int { scores.count }
}

/// SimCC vectors → keypoints in crop pixels, the port of `decode_simcc` (MMPose
/// `get_simcc_maximum`), for artifacts exported without the bundled decoder. `simccX` is `K x Lx`
/// and `simccY` `K x Ly`, row-major. Location = argmax / split ratio (first maximum on a tie);
/// score = the smaller of the two maxima; a keypoint whose score is <= 0 gets location -1.
/// Float32 arithmetic, as in the reference, so results match exactly.
public func decodeSimcc(_ simccX: [Float], _ simccY: [Float], numKeypoints k: Int, splitRatio: Double) throws -> Keypoints {
    guard k > 0, simccX.count % k == 0, simccY.count % k == 0 else {
        throw PoseError.invalidArgument("SimCC sizes \(simccX.count), \(simccY.count) do not split into \(k) keypoints")
    }
    let lx = simccX.count / k
    let ly = simccY.count / k
    let split = Float(splitRatio)
    var xy = [Float](repeating: 0, count: 2 * k)
    var scores = [Float](repeating: 0, count: k)
    for j in 0..<k {
        let (ix, mx) = argmax(simccX, offset: j * lx, length: lx)
        let (iy, my) = argmax(simccY, offset: j * ly, length: ly)
        let score = min(mx, my)
        scores[j] = score
        if score <= 0 {
            xy[2 * j] = -1
            xy[2 * j + 1] = -1
        } else {
            xy[2 * j] = Float(ix) / split
            xy[2 * j + 1] = Float(iy) / split
        }
    }
    return try Keypoints(xy: xy, scores: scores)
}

private func argmax(_ v: [Float], offset: Int, length: Int) -> (Int, Float) {
    var best = 0
    var maxValue = v[offset]
    for j in 1..<max(length, 1) where v[offset + j] > maxValue {
        maxValue = v[offset + j]
        best = j
    }
    return (best, maxValue)
}

/// Crop-pixel keypoints → image pixels with the crop → image matrix (`keypoints_to_image`).
public func keypointsToImage(_ kp: Keypoints, cropToImage: Affine) -> [Double] {
    cropToImage.apply(kp.xy.map { Double($0) })
}
