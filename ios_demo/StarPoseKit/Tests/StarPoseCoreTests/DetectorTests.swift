import Foundation
import XCTest
@testable import StarPoseCore

/// The detector post-processing and the multi-person tracker against tests/golden/detector.json
/// (written by starpose/detect/processing.py and starpose/tracking.py), as the Kotlin core's
/// DetectorTests.kt checks them.
final class DetectorTests: XCTestCase {
    lazy var golden: JSONNode = {
        let url = GoldenTests.goldenDir.appendingPathComponent("detector.json")
        let data = FileManager.default.contents(atPath: url.path) ?? Data()
        return try! JSONNode.parse(String(decoding: data, as: UTF8.self), source: url.path)
    }()
    lazy var spec: DetectorSpec = try! DetectorSpec.fromJSON(try golden["spec"])
    lazy var geometry: Double = try! golden["tolerance"]["geometry_abs"].double()
    lazy var decodeTolerance: Double = try! golden["tolerance"]["decode_abs"].double()

    func assertClose(_ actual: [Double], _ expected: [Double], _ tol: Double, _ what: String, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(actual.count, expected.count, "\(what): count", file: file, line: line)
        for (i, (a, e)) in zip(actual, expected).enumerated() where !(abs(a - e) <= tol) {
            XCTFail("\(what)[\(i)]: got \(a), expected \(e) (tolerance \(tol))", file: file, line: line)
            return
        }
    }

    func boxes(_ flat: [Double]) -> [Box] {
        stride(from: 0, to: flat.count, by: 4).map { Box(Array(flat[$0..<($0 + 4)])) }
    }

    func test_detector_letterbox() throws {
        for (i, c) in try golden["letterbox"].list().enumerated() {
            let img = try c["image_size"].ints()
            let inp = try c["input_size"].ints()
            let lb = try letterboxTransform(imageWidth: img[0], imageHeight: img[1], inputWidth: inp[0], inputHeight: inp[1])
            assertClose([lb.scale], [try c["scale"].double()], geometry, "letterbox[\(i)].scale")
            XCTAssertEqual([lb.width, lb.height], try c["size"].ints(), "letterbox[\(i)].size")
        }
        XCTAssertThrowsError(try letterboxTransform(imageWidth: 0, imageHeight: 5, inputWidth: 96, inputHeight: 64))
    }

    func test_detector_anchors() throws {
        let (centres, strides) = anchorPoints(spec)
        assertClose(centres, try golden["anchors"]["centres"].doubles(), 0, "anchors.centres")
        assertClose(strides, try golden["anchors"]["strides"].doubles(), 0, "anchors.strides")
    }

    func test_detector_decode_nms_to_image() throws {
        let d = try golden["decode"]
        let (b, s) = try decodeDetections(logits: try d["logits"].doubles(), boxLogits: try d["box_logits"].doubles(), spec: spec)
        assertClose(b, try d["boxes"].doubles(), decodeTolerance, "decode.boxes")
        assertClose(s, try d["scores"].doubles(), decodeTolerance, "decode.scores")
        let keep = nms(boxes: b, scores: s, scoreThreshold: spec.scoreThreshold, iouThreshold: spec.iouThreshold, maxDetections: spec.maxDetections)
        XCTAssertEqual(keep, try d["keep"].ints())
        let size = try d["image_size"].ints()
        let lb = try letterboxTransform(imageWidth: size[0], imageHeight: size[1], inputWidth: spec.inputWidth, inputHeight: spec.inputHeight)
        assertClose([lb.scale], [try d["scale"].double()], geometry, "decode.scale")
        let image = boxesToImage(b, keep: keep, letterbox: lb, imageWidth: size[0], imageHeight: size[1])
        assertClose(image.flatMap { $0.array }, try d["image_boxes"].doubles(), geometry, "decode.image_boxes")
        let pose = try d["pose_input_size"].ints()
        for (k, c) in try d["crops"].list().enumerated() {
            let cs = bboxXywhToCs(image[k], inputWidth: pose[0], inputHeight: pose[1], padding: try d["pose_padding"].double())
            assertClose(cs.array, try c["center"].doubles() + c["scale"].doubles(), geometry, "decode.crops[\(k)]")
        }
        let step = PersonDetectorStep(metadata: DetectorMetadata(spec: spec, layout: .nhwc, isImage: false, format: "tflite"))
        let found = try step.finish(boxes: b.map { Float($0) }, scores: s.map { Float($0) }, letterbox: lb, imageWidth: size[0], imageHeight: size[1])
        XCTAssertEqual(found.count, keep.count)
        XCTAssertThrowsError(try step.finish(boxes: [0, 0, 1, 1], scores: [0.5], letterbox: lb, imageWidth: size[0], imageHeight: size[1]))
    }

    func test_detector_nms() throws {
        for (i, c) in try golden["nms"].list().enumerated() {
            let keep = nms(boxes: try c["boxes"].doubles(), scores: try c["scores"].doubles(), scoreThreshold: try c["score_threshold"].double(),
                           iouThreshold: try c["iou_threshold"].double(), maxDetections: try c["max_detections"].int())
            XCTAssertEqual(keep, try c["keep"].ints(), "nms[\(i)]")
        }
    }

    func test_detector_match_by_iou() throws {
        for (i, c) in try golden["match_by_iou"].list().enumerated() {
            let pairs = matchByIou(tracks: boxes(try c["tracks"].doubles()), detections: boxes(try c["detections"].doubles()),
                                   iouThreshold: try c["iou_threshold"].double())
            let want = try c["pairs"].list().map { try $0.ints() }
            XCTAssertEqual(pairs.map { [$0.0, $0.1] }, want, "match_by_iou[\(i)]")
        }
    }

    func test_detector_multi_tracker() throws {
        let m = try golden["multi_tracker"]
        let size = try m["image_size"].doubles()
        let p = try m["params"]
        let tracker = MultiPersonTracker(
            imageWidth: size[0], imageHeight: size[1], torso: try m["torso"].ints(),
            roiParams: RoiParams(scoreThreshold: try p["score_threshold"].double()),
            params: try MultiTrackParams(detectEvery: try p["detect_every"].int(), maxPeople: try p["max_people"].int(),
                                         iouThreshold: try p["iou_threshold"].double(), duplicateIou: try p["duplicate_iou"].double()),
            filterParams: nil)
        for (i, fr) in try m["frames"].list().enumerated() {
            XCTAssertEqual(tracker.due(), try fr["due"].bool(), "frame \(i): due")
            if let dets = try fr.opt("detections") {
                tracker.assign(boxes(try dets.doubles()), scores: try fr["detection_scores"].doubles())
            }
            let before = try fr["tracks_before"].list()
            XCTAssertEqual(tracker.tracks.map { $0.id }, try before.map { try $0["id"].int() }, "frame \(i): tracks")
            for (k, t) in before.enumerated() {
                assertClose(tracker.tracks[k].box.array, try t["box"].doubles(), geometry, "frame \(i) track box")
            }
            for u in try fr["updates"].list() {
                let id = try u["id"].int()
                let track = tracker.tracks.first { $0.id == id }!
                tracker.update(track, xy: try u["keypoints"].doubles(), scores: try u["scores"].floats())
                XCTAssertEqual(track.lost, try u["lost"].bool(), "frame \(i) track \(id): lost")
                assertClose(track.box.array, try u["next_box"].doubles(), geometry, "frame \(i) track \(id) next box")
            }
            tracker.advance()
            XCTAssertEqual(tracker.tracks.map { $0.id }, try fr["tracks_after"].ints(), "frame \(i): after")
        }
    }

    func test_detector_people_pipeline() throws {
        let d = try golden["decode"]
        let (b, s) = try decodeDetections(logits: try d["logits"].doubles(), boxLogits: try d["box_logits"].doubles(), spec: spec)
        let size = try d["image_size"].ints()
        let url = GoldenTests.goldenDir.appendingPathComponent("metadata/executorch_nchw.json")
        let pose = try PosePipeline(metadata: try ModelMetadata.fromFile(url), imageWidth: size[0], imageHeight: size[1])
        let people = try PeoplePipeline(pose: pose, detector: PersonDetectorStep(metadata: DetectorMetadata(spec: spec, layout: .nhwc, isImage: false, format: "tflite")),
                                        maxPeople: 2, detectEvery: 2)
        XCTAssertTrue(people.needsDetection())
        let lb = try letterboxTransform(imageWidth: size[0], imageHeight: size[1], inputWidth: spec.inputWidth, inputHeight: spec.inputHeight)
        let found = try people.onDetections(boxes: b.map { Float($0) }, scores: s.map { Float($0) }, letterbox: lb)
        XCTAssertEqual(found.count, 2)
        let bytes = [UInt8](repeating: 0, count: size[0] * size[1] * 3)
        let prepared = try bytes.withUnsafeBytes { buf in
            try people.preparePeople(try RgbImage(width: size[0], height: size[1], bytes: buf))
        }
        XCTAssertEqual(prepared.map { $0.1.box }, found.map { $0.box })
        let k = pose.metadata.spec.numKeypoints
        let w = Float(pose.metadata.input.width)
        let h = Float(pose.metadata.input.height)
        let outputs = prepared.map { _ in
            ModelOutput.decoded(keypoints: (0..<(2 * k)).map { $0 % 2 == 0 ? w / 2 : h / 2 }, scores: [Float](repeating: 0.9, count: k))
        }
        let poses = try people.finishPeople(prepared, outputs: outputs, timestamp: 1.0)
        XCTAssertEqual(poses.map { $0.trackId }, [0, 1])
        for (p, pair) in zip(poses, prepared) {
            XCTAssertEqual(p.keypoints[0], pair.1.centerScale.cx, accuracy: 1e-6)
        }
        XCTAssertTrue(people.needsDetection())
        XCTAssertThrowsError(try people.finishPeople(prepared, outputs: Array(outputs.prefix(1)), timestamp: 2.0))
    }

    func test_detector_artifact_choice() throws {
        let names = ["person_detector_xnnpack_fp32.pte", "person_detector_xnnpack_fp32.pte.json",
                     "starpose_t_xnnpack_fp32.pte", "starpose_t_xnnpack_fp32.pte.json"]
        let poseURL = GoldenTests.goldenDir.appendingPathComponent("metadata/executorch_nchw.json")
        let pose = String(decoding: FileManager.default.contents(atPath: poseURL.path) ?? Data(), as: UTF8.self)
        let detector = """
            {"kind": "person_detector", "format": "executorch", "detector_spec": {"input_size": [96, 64],
            "mean": [1, 1, 1], "std": [1, 1, 1], "strides": [8, 16, 32], "reg_max": 10, "pad_value": 0, "score_threshold": 0.2,
            "iou_threshold": 0.6, "max_detections": 3}, "input": {"width": 96, "height": 64, "layout": "NHWC", "type": "tensor"},
            "outputs": {"boxes": {"shape": [1, 126, 4]}, "scores": {"shape": [1, 126]}}}
            """
        let read = { (n: String) -> String in n.hasPrefix(detectorPrefix) ? detector : pose }
        let choice = try ModelMetadata.pickArtifact(names, extension: "pte", excludedBackends: ["coreml"], read: read)
        XCTAssertEqual(choice?.model, "starpose_t_xnnpack_fp32.pte")
        let det = try pickDetectorArtifact(names, extension: "pte", read: read)
        XCTAssertEqual(det?.0, "person_detector_xnnpack_fp32.pte")
        XCTAssertEqual(det?.1.numAnchors, 126)
        XCTAssertNil(try pickDetectorArtifact(names.filter { !$0.hasSuffix(".json") }, extension: "pte", read: read))
    }

    func test_detector_metadata() throws {
        XCTAssertThrowsError(try DetectorMetadata.parse(#"{"kind": "person_detector", "detector_spec": {}}"#, source: "det.json")) {
            XCTAssertTrue("\($0)".contains("input_size"))
        }
        XCTAssertThrowsError(try DetectorMetadata.parse(#"{"kind": "pose"}"#, source: "det.json")) {
            XCTAssertTrue("\($0)".contains("kind"))
        }
    }
}
