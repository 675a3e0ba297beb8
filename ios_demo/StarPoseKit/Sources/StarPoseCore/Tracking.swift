import Foundation

// Port of starpose/tracking.py (and android_demo/core's Tracking.kt): One Euro smoothing and
// MoveNet-style single-person ROI tracking, operation by operation.

/// One Euro filter parameters: rest cutoff (Hz), speed coefficient, speed cutoff (Hz).
public struct FilterParams: Equatable {
    public var minCutoff: Double
    public var beta: Double
    public var dCutoff: Double

    public init(minCutoff: Double = 1.0, beta: Double = 0.01, dCutoff: Double = 1.0) throws {
        guard minCutoff > 0, dCutoff > 0, beta >= 0 else {
            throw PoseError.invalidArgument("OneEuroFilter: need min_cutoff > 0, d_cutoff > 0, beta >= 0; got \(minCutoff), \(dCutoff), \(beta)")
        }
        self.minCutoff = minCutoff
        self.beta = beta
        self.dCutoff = dCutoff
    }

    public static let standard = try! FilterParams()
}

private func smoothingFactor(_ dt: Double, _ cutoff: Double) -> Double {
    let r = 2.0 * Double.pi * cutoff * dt
    return r / (r + 1.0)
}

/// One Euro filter over `size` values, element-wise; an invalid element passes through and
/// restarts when valid again (`OneEuroFilter` in tracking.py).
public final class OneEuroFilter {
    public let size: Int
    public let params: FilterParams
    private var x: [Double]
    private var dx: [Double]
    private var t: [Double]
    private var lastT = Double.nan

    public init(size: Int, params: FilterParams = .standard) {
        self.size = size
        self.params = params
        x = [Double](repeating: 0, count: size)
        dx = [Double](repeating: 0, count: size)
        t = [Double](repeating: .nan, count: size)
    }

    public func reset() {
        x = [Double](repeating: 0, count: size)
        dx = [Double](repeating: 0, count: size)
        t = [Double](repeating: .nan, count: size)
        lastT = .nan
    }

    /// Filter `sample` taken at `timestamp` seconds; `valid` is per element (nil: all valid).
    public func filter(_ sample: [Double], timestamp: Double, valid: [Bool]? = nil) throws -> [Double] {
        guard sample.count == size else {
            throw PoseError.invalidArgument("OneEuroFilter: sample of \(sample.count) values, filter of \(size); call reset() when the keypoint layout changes")
        }
        guard valid == nil || valid!.count == size else { throw PoseError.invalidArgument("valid mask of \(valid!.count) for \(size) values") }
        guard lastT.isNaN || timestamp > lastT else {
            throw PoseError.invalidArgument("OneEuroFilter: timestamps must increase, got \(timestamp) after \(lastT)")
        }
        lastT = timestamp
        var out = sample
        for k in 0..<size {
            if let v = valid, !v[k] {
                t[k] = .nan
                continue
            }
            if t[k].isNaN {
                dx[k] = 0
            } else {
                let dt = timestamp - t[k]
                let xPrev = x[k]
                let speed = (sample[k] - xPrev) / dt
                let aD = smoothingFactor(dt, params.dCutoff)
                let dxHat = aD * speed + (1.0 - aD) * dx[k]
                let cutoff = params.minCutoff + params.beta * abs(dxHat)
                let a = smoothingFactor(dt, cutoff)
                out[k] = a * sample[k] + (1.0 - a) * xPrev
                dx[k] = dxHat
            }
            x[k] = out[k]
            t[k] = timestamp
        }
        return out
    }

    /// Interleaved keypoints `[x0, y0, ...]` with one validity flag per keypoint.
    public func filterKeypoints(_ xy: [Double], timestamp: Double, validPerKeypoint: [Bool]) throws -> [Double] {
        try filter(xy, timestamp: timestamp, valid: (0..<xy.count).map { validPerKeypoint[$0 / 2] })
    }
}

/// The keypoint names that define the torso: left/right shoulder, left/right hip.
public let torsoNames = ["left_shoulder", "right_shoulder", "left_hip", "right_hip"]

/// Indices of the torso keypoints in a layout; fails naming the missing ones.
public func torsoIndices(_ keypointNames: [String]) throws -> [Int] {
    let missing = torsoNames.filter { !keypointNames.contains($0) }
    guard missing.isEmpty else {
        throw PoseError.invalidArgument("keypoint layout has no \(missing.joined(separator: ", ")): cannot track a torso")
    }
    return torsoNames.map { keypointNames.firstIndex(of: $0)! }
}

/// ROI parameters, defaults as in tracking.py.
public struct RoiParams: Equatable {
    public var scoreThreshold: Double
    public var torsoFactor: Double
    public var bodyFactor: Double

    public init(scoreThreshold: Double = 0.3, torsoFactor: Double = 1.5, bodyFactor: Double = 1.2) {
        self.scoreThreshold = scoreThreshold
        self.torsoFactor = torsoFactor
        self.bodyFactor = bodyFactor
    }
}

public func fullFrameBox(width: Double, height: Double) -> Box {
    Box(x: 0, y: 0, w: width, h: height)
}

/// Next frame's person box from this frame's keypoints (image pixels), or nil when the torso is
/// not visible (`roi_from_keypoints`): centred on the visible hips, per-axis half-extent =
/// max(torso extent x torsoFactor, body extent x bodyFactor), clamped to the farthest border,
/// the full frame when it spans the image on both axes.
public func roiFromKeypoints(_ xy: [Double], scores: [Float], imageWidth: Double, imageHeight: Double, torso: [Int], params: RoiParams = RoiParams()) -> Box? {
    let n = scores.count
    let visible = scores.map { Double($0) > params.scoreThreshold }
    let shoulders = torso[0..<2].filter { visible[$0] }
    let hips = torso[2..<4].filter { visible[$0] }
    if shoulders.isEmpty || hips.isEmpty { return nil }
    var cx = 0.0
    var cy = 0.0
    for i in hips {
        cx += xy[2 * i]
        cy += xy[2 * i + 1]
    }
    cx /= Double(hips.count)
    cy /= Double(hips.count)
    var torsoX = 0.0
    var torsoY = 0.0
    for i in shoulders + hips {
        torsoX = max(torsoX, abs(xy[2 * i] - cx))
        torsoY = max(torsoY, abs(xy[2 * i + 1] - cy))
    }
    var bodyX = 0.0
    var bodyY = 0.0
    for i in 0..<n where visible[i] {
        bodyX = max(bodyX, abs(xy[2 * i] - cx))
        bodyY = max(bodyY, abs(xy[2 * i + 1] - cy))
    }
    var hx = max(torsoX * params.torsoFactor, bodyX * params.bodyFactor)
    var hy = max(torsoY * params.torsoFactor, bodyY * params.bodyFactor)
    hx = min(hx, max(cx, imageWidth - cx))
    hy = min(hy, max(cy, imageHeight - cy))
    if !(hx > 0 && hy > 0) { return nil }
    if hx >= imageWidth / 2 && hy >= imageHeight / 2 { return fullFrameBox(width: imageWidth, height: imageHeight) }
    return Box(x: cx - hx, y: cy - hy, w: 2 * hx, h: 2 * hy)
}

/// Single-person ROI tracking: full frame until a torso is seen, then follow the keypoints.
public final class RoiTracker {
    public let imageWidth: Double
    public let imageHeight: Double
    public let torso: [Int]
    public let params: RoiParams
    /// The region to crop in the next frame.
    public private(set) var box: Box
    /// True while `box` is the full-frame fallback because no torso was visible.
    public private(set) var lost = true

    public init(imageWidth: Double, imageHeight: Double, torso: [Int], params: RoiParams = RoiParams()) {
        self.imageWidth = imageWidth
        self.imageHeight = imageHeight
        self.torso = torso
        self.params = params
        box = fullFrameBox(width: imageWidth, height: imageHeight)
    }

    public func reset() {
        box = fullFrameBox(width: imageWidth, height: imageHeight)
        lost = true
    }

    /// Take this frame's unsmoothed keypoints (image pixels) and scores; return the next box.
    @discardableResult
    public func update(_ xy: [Double], scores: [Float]) -> Box {
        let roi = roiFromKeypoints(xy, scores: scores, imageWidth: imageWidth, imageHeight: imageHeight, torso: torso, params: params)
        lost = roi == nil
        box = roi ?? fullFrameBox(width: imageWidth, height: imageHeight)
        return box
    }
}

/// IoU of two `(x, y, w, h)` boxes; 0 when the union is empty (`box_iou_xywh`).
public func boxIouXywh(_ a: Box, _ b: Box) -> Double {
    let iw = max(0, min(a.x + a.w, b.x + b.w) - max(a.x, b.x))
    let ih = max(0, min(a.y + a.h, b.y + b.h) - max(a.y, b.y))
    let inter = iw * ih
    let union = max(a.w, 0) * max(a.h, 0) + max(b.w, 0) * max(b.h, 0) - inter
    return union > 0 ? inter / union : 0
}

/// `match_by_iou`: greedy one-to-one matching; pairs with IoU >= `iouThreshold` taken by
/// descending IoU (ties: lower track, then lower detection index). Returns (track, detection).
public func matchByIou(tracks: [Box], detections: [Box], iouThreshold: Double = 0.3) -> [(Int, Int)] {
    var cands: [(iou: Double, t: Int, d: Int)] = []
    for (t, tb) in tracks.enumerated() {
        for (d, db) in detections.enumerated() {
            let v = boxIouXywh(tb, db)
            if v >= iouThreshold { cands.append((v, t, d)) }
        }
    }
    cands.sort { $0.iou != $1.iou ? $0.iou > $1.iou : ($0.t != $1.t ? $0.t < $1.t : $0.d < $1.d) }
    var usedT = Set<Int>()
    var usedD = Set<Int>()
    var out: [(Int, Int)] = []
    for c in cands where !usedT.contains(c.t) && !usedD.contains(c.d) {
        usedT.insert(c.t)
        usedD.insert(c.d)
        out.append((c.t, c.d))
    }
    return out
}

/// One followed person (`Track`): stable id, next crop box, last pose, own One Euro filter.
public final class Track {
    public let id: Int
    public var box: Box
    public var score: Double
    public let filter: OneEuroFilter?
    public var keypoints: [Double]?
    public var scores: [Float]?
    public var lost = false

    public init(id: Int, box: Box, score: Double, filter: OneEuroFilter?) {
        self.id = id
        self.box = box
        self.score = score
        self.filter = filter
    }
}

/// Multi-person tracker parameters, defaults as in tracking.py.
public struct MultiTrackParams: Equatable {
    public var detectEvery: Int
    public var maxPeople: Int
    public var iouThreshold: Double
    public var duplicateIou: Double

    public init(detectEvery: Int = 5, maxPeople: Int = 5, iouThreshold: Double = 0.3, duplicateIou: Double = 0.6) throws {
        guard detectEvery >= 1, maxPeople >= 1 else {
            throw PoseError.invalidArgument("detect_every and max_people must be >= 1, got \(detectEvery), \(maxPeople)")
        }
        self.detectEvery = detectEvery
        self.maxPeople = maxPeople
        self.iouThreshold = iouThreshold
        self.duplicateIou = duplicateIou
    }
}

/// `MultiPersonTracker`: a detector every `detectEvery` frames (and when a track was lost or
/// nobody is followed), IoU matching to the tracks, ROI tracking in between. Per frame:
/// `due()` → (detector → `assign`) → crop every `tracks` box → `update` each → `advance()`.
public final class MultiPersonTracker {
    public let imageWidth: Double
    public let imageHeight: Double
    public let torso: [Int]
    public let roiParams: RoiParams
    public let params: MultiTrackParams
    public let filterParams: FilterParams?
    public let numValues: Int
    public private(set) var tracks: [Track] = []
    public private(set) var frame = 0
    private var nextId = 0
    private var sinceDetection: Int?
    private var force = true

    public init(imageWidth: Double, imageHeight: Double, torso: [Int], roiParams: RoiParams = RoiParams(),
                params: MultiTrackParams, filterParams: FilterParams? = .standard, numValues: Int = 34) {
        self.imageWidth = imageWidth
        self.imageHeight = imageHeight
        self.torso = torso
        self.roiParams = roiParams
        self.params = params
        self.filterParams = filterParams
        self.numValues = numValues
    }

    public func due() -> Bool {
        force || tracks.isEmpty || sinceDetection == nil || sinceDetection! >= params.detectEvery
    }

    /// This frame's detections, best first: match, start and drop tracks.
    public func assign(_ boxes: [Box], scores: [Double]? = nil) {
        let sc = scores ?? [Double](repeating: 1.0, count: boxes.count)
        let pairs = matchByIou(tracks: tracks.map { $0.box }, detections: boxes, iouThreshold: params.iouThreshold)
        var kept: [Track] = []
        for (t, d) in pairs {
            let track = tracks[t]
            track.box = boxes[d]
            track.score = sc[d]
            track.lost = false
            kept.append(track)
        }
        let taken = Set(pairs.map { $0.1 })
        for d in boxes.indices where !taken.contains(d) && kept.count < params.maxPeople {
            kept.append(Track(id: nextId, box: boxes[d], score: sc[d], filter: filterParams.map { OneEuroFilter(size: numValues, params: $0) }))
            nextId += 1
        }
        tracks = kept.sorted { $0.id < $1.id }
        sinceDetection = 0
        force = false
    }

    /// This frame's unsmoothed keypoints of `track`: its next box, or lost.
    public func update(_ track: Track, xy: [Double], scores: [Float]) {
        track.keypoints = xy
        track.scores = scores
        let roi = roiFromKeypoints(xy, scores: scores, imageWidth: imageWidth, imageHeight: imageHeight, torso: torso, params: roiParams)
        track.lost = roi == nil
        if let roi = roi { track.box = roi }
    }

    /// End the frame: drop lost and duplicate tracks, count frames since the last detection.
    public func advance() {
        if tracks.contains(where: { $0.lost }) { force = true }
        let alive = tracks.filter { !$0.lost }
        var mean: [Int: Double] = [:]
        for t in alive {
            let s = t.scores ?? []
            mean[t.id] = s.isEmpty ? 0 : s.reduce(0.0) { $0 + Double($1) } / Double(s.count)
        }
        var drop = Set<Int>()
        for i in alive.indices {
            for j in (i + 1)..<max(alive.count, i + 1) {
                let a = alive[i]
                let b = alive[j]
                if drop.contains(a.id) || drop.contains(b.id) { continue }
                if boxIouXywh(a.box, b.box) > params.duplicateIou {
                    let ma = mean[a.id]!
                    let mb = mean[b.id]!
                    drop.insert(mb < ma || (mb == ma && b.id > a.id) ? b.id : a.id)
                }
            }
        }
        tracks = alive.filter { !drop.contains($0.id) }
        frame += 1
        if let s = sinceDetection { sinceDetection = s + 1 }
    }
}
