import Foundation
import XCTest
@testable import StarPoseCore

/// StarPoseCore against the shared golden fixture (tests/golden, written by the numpy reference
/// in starpose/processing.py and starpose/tracking.py), the same files and tolerances as the
/// Kotlin core's runner and pytest. The fixture is read in place from the repository (found from
/// this file's path, or STARPOSE_GOLDEN), so there is no copy to drift.
final class GoldenTests: XCTestCase {
    static let goldenDir: URL = {
        if let env = ProcessInfo.processInfo.environment["STARPOSE_GOLDEN"] {
            return URL(fileURLWithPath: env)
        }
        // <repo>/ios_demo/StarPoseKit/Tests/StarPoseCoreTests/GoldenTests.swift → <repo>/tests/golden
        var url = URL(fileURLWithPath: #filePath)
        for _ in 0..<5 { url.deleteLastPathComponent() }
        return url.appendingPathComponent("tests/golden")
    }()

    func load(_ name: String) throws -> JSONNode {
        let url = Self.goldenDir.appendingPathComponent(name)
        guard let data = FileManager.default.contents(atPath: url.path) else {
            XCTFail("golden file \(url.path) not found")
            throw PoseError.invalidArgument("missing \(url.path)")
        }
        return try JSONNode.parse(String(decoding: data, as: UTF8.self), source: url.path)
    }

    lazy var processing: JSONNode = try! load("processing.json")
    lazy var tracking: JSONNode = try! load("tracking.json")
    lazy var tolerance: JSONNode = try! processing["tolerance"]
    lazy var geometryTolerance: Double = try! tolerance["geometry_abs"].double()

    func assertClose(_ actual: [Double], _ expected: [Double], _ tol: Double, _ what: String, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(actual.count, expected.count, "\(what): count", file: file, line: line)
        for (i, (a, e)) in zip(actual, expected).enumerated() where !(abs(a - e) <= tol) {
            XCTFail("\(what)[\(i)]: got \(a), expected \(e) (tolerance \(tol))", file: file, line: line)
            return
        }
    }

    func affine(_ node: JSONNode) throws -> Affine {
        try Affine(try node.list().flatMap { try $0.doubles() })
    }

    func points(_ node: JSONNode) throws -> [Double] {
        try node.list().flatMap { try $0.doubles() }
    }

    func centerScale(_ node: JSONNode) throws -> [Double] {
        try node["center"].doubles() + node["scale"].doubles()
    }

    func test_boxes_xywh() throws {
        for (i, c) in try processing["boxes_xywh"].list().enumerated() {
            let size = try c["input_size"].ints()
            let cs = bboxXywhToCs(Box(try c["bbox_xywh"].doubles()), inputWidth: size[0], inputHeight: size[1], padding: try c["padding"].double())
            assertClose(cs.array, try centerScale(c), geometryTolerance, "boxes_xywh[\(i)]")
        }
    }

    func test_boxes_xyxy() throws {
        for (i, c) in try processing["boxes_xyxy"].list().enumerated() {
            let b = try c["bbox_xyxy"].doubles()
            let size = try c["input_size"].ints()
            let cs = bboxXyxyToCs(b[0], b[1], b[2], b[3], inputWidth: size[0], inputHeight: size[1], padding: try c["padding"].double())
            assertClose(cs.array, try centerScale(c), geometryTolerance, "boxes_xyxy[\(i)]")
        }
    }

    func test_affine() throws {
        for (i, c) in try processing["affine"].list().enumerated() {
            let ctr = try c["center"].doubles()
            let scl = try c["scale"].doubles()
            let out = try c["output_size"].ints()
            let cs = CenterScale(cx: ctr[0], cy: ctr[1], sw: scl[0], sh: scl[1])
            let rot = try c["rot"].double()
            let m = try getWarpMatrix(cs, rotation: rot, outputWidth: out[0], outputHeight: out[1])
            let inv = try getWarpMatrix(cs, rotation: rot, outputWidth: out[0], outputHeight: out[1], inverse: true)
            assertClose(m.array, try affine(c["matrix"]).array, geometryTolerance, "affine[\(i)].matrix")
            assertClose(inv.array, try affine(c["inverse"]).array, geometryTolerance, "affine[\(i)].inverse")
            assertClose(try affine(c["matrix"]).inverse().array, try affine(c["inverse"]).array, geometryTolerance, "affine[\(i)] inverse()")
            let mapped = m.apply(try points(c["points"]))
            assertClose(mapped, try points(c["mapped"]), geometryTolerance, "affine[\(i)].mapped")
            assertClose(try m.inverse().apply(mapped), try points(c["mapped_back"]), geometryTolerance, "affine[\(i)].mapped_back")
            assertClose(m.then(inv).array, Affine.identity.array, 1e-9, "affine[\(i)] m.then(inv)")
        }
    }

    func test_warp() throws {
        let img = try processing["warp_image"]
        let w = try img["width"].int()
        let h = try img["height"].int()
        let rgb = try img["rgb_hwc"].ints().map { UInt8($0) }
        let maxAbs = try tolerance["warp_max_abs"].int()
        for (i, c) in try processing["warp"].list().enumerated() {
            let out = try c["output_size"].ints()
            let ctr = try c["center"].doubles()
            let scl = try c["scale"].doubles()
            let m = try getWarpMatrix(CenterScale(cx: ctr[0], cy: ctr[1], sw: scl[0], sh: scl[1]), rotation: try c["rot"].double(),
                                      outputWidth: out[0], outputHeight: out[1])
            assertClose(m.array, try affine(c["matrix"]).array, geometryTolerance, "warp[\(i)].matrix")
            let (crop, planar) = try rgb.withUnsafeBytes { buf -> ([UInt8], [UInt8]) in
                let src = try RgbImage(width: w, height: h, bytes: buf)
                return (try warpAffineBilinear(src, imageToCrop: m, outputWidth: out[0], outputHeight: out[1], layout: .nhwc),
                        try warpAffineBilinear(src, imageToCrop: m, outputWidth: out[0], outputHeight: out[1], layout: .nchw))
            }
            let expected = try c["crop_hwc"].ints()
            XCTAssertEqual(crop.count, expected.count, "warp[\(i)] size")
            let worst = zip(crop, expected).map { abs(Int($0) - $1) }.max() ?? 0
            XCTAssertLessThanOrEqual(worst, maxAbs, "warp[\(i)]: max abs difference \(worst)")
            let plane = out[0] * out[1]
            for p in 0..<plane {
                for ch in 0..<3 where planar[ch * plane + p] != crop[p * 3 + ch] {
                    XCTFail("warp[\(i)]: NCHW differs from NHWC at pixel \(p) channel \(ch)")
                }
            }
            // The same pixels read as BGRA with padded rows (a locked CVPixelBuffer).
            let stride = w * 4 + 16
            var bgra = [UInt8](repeating: 255, count: stride * h)
            for y in 0..<h {
                for x in 0..<w {
                    for ch in 0..<3 { bgra[y * stride + x * 4 + (2 - ch)] = rgb[(y * w + x) * 3 + ch] }
                }
            }
            let viaBgra = try bgra.withUnsafeBytes { buf in
                try warpAffineBilinear(try RgbImage(width: w, height: h, bytes: buf, pixelStride: 4, rowStride: stride, channelOffsets: (2, 1, 0)),
                                       imageToCrop: m, outputWidth: out[0], outputHeight: out[1])
            }
            XCTAssertEqual(viaBgra, crop, "warp[\(i)]: BGRA-strided source gives a different crop")
        }
    }

    func test_normalize() throws {
        let tol = try tolerance["normalize_abs"].double()
        for (i, c) in try processing["normalize"].list().enumerated() {
            let rgb = try c["rgb_hwc"].ints().map { UInt8($0) }
            let out = normalizeImage(rgb, width: try c["width"].int(), height: try c["height"].int(), mean: try c["mean"].doubles(), std: try c["std"].doubles())
            assertClose(out.map { Double($0) }, try c["output_chw"].doubles(), tol, "normalize[\(i)]")
        }
    }

    func test_simcc() throws {
        for c in try processing["simcc"].list() {
            let name = try c["name"].string()
            let k = try c["num_keypoints"].int()
            let kp = try decodeSimcc(try c["simcc_x"].floats(), try c["simcc_y"].floats(), numKeypoints: k, splitRatio: try c["split_ratio"].double())
            assertClose(kp.xy.map { Double($0) }, try c["keypoints"].doubles(), try tolerance["simcc_keypoints_abs"].double(), "simcc \(name) keypoints")
            assertClose(kp.scores.map { Double($0) }, try c["scores"].doubles(), try tolerance["simcc_scores_abs"].double(), "simcc \(name) scores")
            let image = keypointsToImage(kp, cropToImage: try affine(c["crop_to_image"]))
            assertClose(image, try c["keypoints_image"].doubles(), geometryTolerance, "simcc \(name) keypoints_image")
        }
    }

    func test_one_euro() throws {
        let tol = try tolerance["filter_abs"].double()
        for (i, c) in try tracking["one_euro"].list().enumerated() {
            let p = try c["params"]
            let n = try c["num_points"].int()
            let f = OneEuroFilter(size: 2 * n, params: try FilterParams(minCutoff: try p["min_cutoff"].double(), beta: try p["beta"].double(), dCutoff: try p["d_cutoff"].double()))
            let ts = try c["timestamps"].doubles()
            let samples = try c["samples"].list()
            let valid = try c["valid"].list()
            let outputs = try c["outputs"].list()
            for t in ts.indices {
                let v = try valid[t].list().map { try $0.bool() }
                let got = try f.filterKeypoints(try samples[t].doubles(), timestamp: ts[t], validPerKeypoint: v)
                assertClose(got, try outputs[t].doubles(), tol, "one_euro[\(i)] frame \(t)")
            }
        }
    }

    func test_roi() throws {
        let roi = try tracking["roi"]
        let tol = try tolerance["roi_abs"].double()
        let size = try roi["image_size"].doubles()
        let inSize = try roi["input_size"].ints()
        let torso = try torsoIndices(try roi["keypoint_names"].strings())
        XCTAssertEqual(torso, try roi["torso"].ints())
        let p = try roi["params"]
        let params = RoiParams(scoreThreshold: try p["score_threshold"].double(), torsoFactor: try p["torso_factor"].double(), bodyFactor: try p["body_factor"].double())
        let tracker = RoiTracker(imageWidth: size[0], imageHeight: size[1], torso: torso, params: params)
        for (i, fr) in try roi["frames"].list().enumerated() {
            assertClose(tracker.box.array, try fr["box_used"].doubles(), tol, "roi frame \(i) box_used")
            let cs = bboxXywhToCs(tracker.box, inputWidth: inSize[0], inputHeight: inSize[1], padding: try roi["padding"].double())
            assertClose(cs.array, try centerScale(fr), tol, "roi frame \(i) center/scale")
            let xy = try fr["keypoints"].doubles()
            let scores = try fr["scores"].floats()
            let roiNode = try fr["roi"]
            var expectRoi: Box?
            if !roiNode.isNull { expectRoi = Box(try roiNode.doubles()) }
            let got = roiFromKeypoints(xy, scores: scores, imageWidth: size[0], imageHeight: size[1], torso: torso, params: params)
            XCTAssertEqual(got == nil, expectRoi == nil, "roi frame \(i): got \(String(describing: got)), expected \(String(describing: expectRoi))")
            if let g = got, let e = expectRoi { assertClose(g.array, e.array, tol, "roi frame \(i) roi") }
            let next = tracker.update(xy, scores: scores)
            assertClose(next.array, try fr["next_box"].doubles(), tol, "roi frame \(i) next_box")
            XCTAssertEqual(tracker.lost, try fr["lost"].bool(), "roi frame \(i) lost")
        }
    }

    func test_skeleton() throws {
        for c in try tracking["skeleton"].list() {
            let spec = try c["spec"].string()
            let skeleton = try c["skeleton"].list().map { try $0.ints() }
            let dl = skeletonDrawList(scores: try c["scores"].floats(), skeleton: skeleton, keypointNames: try c["keypoint_names"].strings(), threshold: try c["threshold"].double())
            let points = try c["points"].list().map { pt -> String in
                let v = try pt.list()
                return "\(try v[0].int()):\(try v[1].string())"
            }
            let lines = try c["lines"].list().map { ln -> String in
                let v = try ln.list()
                return "\(try v[0].int())-\(try v[1].int()):\(try v[2].string())"
            }
            XCTAssertEqual(dl.points.map { "\($0.index):\($0.side.rawValue)" }, points, "skeleton \(spec) points")
            XCTAssertEqual(dl.lines.map { "\($0.a)-\($0.b):\($0.side.rawValue)" }, lines, "skeleton \(spec) lines")
        }
    }

    func test_pipeline() throws {
        let pl = try tracking["pipeline"]
        let meta = try ModelMetadata.fromFile(Self.goldenDir.appendingPathComponent(try pl["metadata"].string()))
        let size = try pl["image_size"].ints()
        let rp = try pl["roi_params"]
        let fp = try pl["filter_params"]
        let pipeline = try PosePipeline(
            metadata: meta, imageWidth: size[0], imageHeight: size[1],
            roiParams: RoiParams(scoreThreshold: try rp["score_threshold"].double(), torsoFactor: try rp["torso_factor"].double(), bodyFactor: try rp["body_factor"].double()),
            filterParams: try FilterParams(minCutoff: try fp["min_cutoff"].double(), beta: try fp["beta"].double(), dCutoff: try fp["d_cutoff"].double())
        )
        let frameBytes = (0..<(size[0] * size[1] * 3)).map { UInt8($0 % 251) }
        for (i, fr) in try pl["frames"].list().enumerated() {
            let prepared = try frameBytes.withUnsafeBytes { buf in
                try pipeline.prepare(try RgbImage(width: size[0], height: size[1], bytes: buf))
            }
            assertClose(prepared.box.array, try fr["box"].doubles(), geometryTolerance, "pipeline frame \(i) box")
            assertClose(prepared.centerScale.array, try centerScale(fr), geometryTolerance, "pipeline frame \(i) center/scale")
            assertClose(prepared.imageToCrop.array, try affine(fr["image_to_crop"]).array, geometryTolerance, "pipeline frame \(i) image_to_crop")
            XCTAssertEqual(prepared.pixels?.count, 3 * meta.input.width * meta.input.height)
            XCTAssertEqual(prepared.shape, [1, 3, 256, 192])
            let output = ModelOutput.decoded(keypoints: try fr["model_keypoints_crop"].floats(), scores: try fr["model_scores"].floats())
            let result = try pipeline.finish(prepared, output: output, timestamp: try fr["timestamp"].double())
            assertClose(result.keypoints, try fr["keypoints_image"].doubles(), geometryTolerance, "pipeline frame \(i) keypoints_image")
            assertClose(result.smoothed, try fr["smoothed"].doubles(), try tolerance["filter_abs"].double(), "pipeline frame \(i) smoothed")
            assertClose(result.nextBox.array, try fr["next_box"].doubles(), geometryTolerance, "pipeline frame \(i) next_box")
            XCTAssertEqual(result.lost, try fr["lost"].bool(), "pipeline frame \(i) lost")
        }
    }

    func test_metadata_valid() throws {
        let cases = try load("metadata_cases.json")
        for c in try cases["valid"].list() {
            let file = try c["file"].string()
            let m = try ModelMetadata.fromFile(Self.goldenDir.appendingPathComponent(file))
            var decoded = false
            var imagePixels = false
            if case let .decoded(units) = m.outputs {
                decoded = true
                imagePixels = units == .imagePixels
            }
            let got: [String: JSON] = [
                "format": .string(m.format), "variant": .string(m.variant),
                "input_width": .number(Double(m.input.width)), "input_height": .number(Double(m.input.height)),
                "layout": .string(m.input.layout.rawValue), "dtype": .string(m.input.dtype.rawValue),
                "normalize_in_app": .bool(m.input.normalizeInApp), "image_input": .bool(m.input.isImage),
                "affine_input": .bool(m.affineInput.present), "num_keypoints": .number(Double(m.spec.numKeypoints)),
                "skeleton_pairs": .number(Double(m.spec.skeleton.count)), "first_keypoint": .string(m.spec.keypointNames[0]),
                "outputs": .string(decoded ? "decoded" : "simcc"), "keypoints_in_image_pixels": .bool(imagePixels),
                "simcc_split_ratio": .number(m.spec.simccSplitRatio), "bbox_padding": .number(m.spec.bboxPadding),
                "mean": .array(m.spec.mean.map { .number($0) }), "std": .array(m.spec.std.map { .number($0) }),
            ]
            let expect = try c["expect"].object()
            XCTAssertEqual(Set(got.keys), Set(expect.keys), "\(file): expectation keys")
            for (key, value) in expect {
                XCTAssertEqual(got[key], value, "\(file): \(key)")
            }
        }
    }

    func test_metadata_invalid() throws {
        let cases = try load("metadata_cases.json")
        for c in try cases["invalid"].list() {
            let name = try c["name"].string()
            let expected = try c["error"].string()
            XCTAssertThrowsError(try ModelMetadata.parse(try c["text"].string(), source: "\(name).json"), name) { error in
                let message = String(describing: error)
                XCTAssertTrue(error is MetadataError, "\(name): \(type(of: error))")
                XCTAssertTrue(message.contains(expected), "\(name): \"\(message)\" does not mention \"\(expected)\"")
                XCTAssertTrue(message.contains("\(name).json"), "\(name): \"\(message)\" does not name the file")
            }
        }
    }

    // Unit checks of what the fixture cannot express (the Kotlin runner has the same ones).

    func test_json_parser() throws {
        let v = try JSON.parse(#"{"a": [1, -2.5e3, 0.125, true, false, null], "s": "q\"\\\/\n\u00e9", "o": {}}"#)
        XCTAssertEqual(v, .object([
            "a": .array([.number(1), .number(-2500), .number(0.125), .bool(true), .bool(false), .null]),
            "s": .string("q\"\\/\n\u{e9}"),
            "o": .object([:]),
        ]))
        XCTAssertEqual(try JSON.parse("0.1"), .number(0.1))
        XCTAssertEqual(try JSON.parse("\"\\ud83d\\ude00\""), .string("\u{1F600}"))
        for bad in ["", "01", "1.", "-", "[1,]", #"{"a":1,"a":2}"#, #""\x""#, "[1 2]", "nul", #"{"a" 1}"#, "NaN", "\"tab\there\""] {
            XCTAssertThrowsError(try JSON.parse(bad, source: "t.json"), "accepted '\(bad)'") { error in
                XCTAssertTrue(String(describing: error).contains("invalid JSON"))
            }
        }
        XCTAssertThrowsError(try JSON.parse("[1,\n  x]", source: "t.json")) { error in
            XCTAssertTrue(String(describing: error).contains("line 2, column 3"), String(describing: error))
        }
        XCTAssertThrowsError(try JSON.parse(String(repeating: "[", count: 600) + String(repeating: "]", count: 600)))
    }

    func test_output_classification() throws {
        let meta = try ModelMetadata.fromFile(Self.goldenDir.appendingPathComponent("metadata/executorch_nchw.json"))
        let kp = (0..<34).map { Float($0) }
        let sc = [Float](repeating: 0.5, count: 17)
        guard case let .decoded(keypoints, scores) = try ModelOutput.fromTensors(shapes: [[1, 17], [1, 17, 2]], data: [sc, kp], metadata: meta) else {
            return XCTFail("decoded outputs not matched by shape")
        }
        XCTAssertEqual(keypoints, kp)
        XCTAssertEqual(scores, sc)
        XCTAssertThrowsError(try ModelOutput.fromTensors(shapes: [[1, 16, 2], [1, 16]], data: [[Float](repeating: 0, count: 32), [Float](repeating: 0, count: 16)], metadata: meta))
        let mpii = try ModelMetadata.fromFile(Self.goldenDir.appendingPathComponent("metadata/coreml_mpii_simcc.json"))
        let x = [Float](repeating: 1, count: 16 * 512)
        let y = [Float](repeating: 2, count: 16 * 512)
        guard case let .simcc(sx, sy) = try ModelOutput.fromTensors(shapes: [[1, 16, 512], [1, 16, 512]], data: [x, y], metadata: mpii) else {
            return XCTFail("SimCC outputs not matched")
        }
        XCTAssertEqual(sx, x, "equal-length SimCC outputs must keep x, y order")
        XCTAssertEqual(sy, y)
    }

    func test_affine_input_and_float_input() throws {
        let tfl = try ModelMetadata.fromFile(Self.goldenDir.appendingPathComponent("metadata/tflite_nhwc_affine.json"))
        let frame = [UInt8](repeating: 100, count: 64 * 48 * 3)
        let p = try PosePipeline(metadata: tfl, imageWidth: 64, imageHeight: 48)
        let prepared = try frame.withUnsafeBytes { try p.prepare(try RgbImage(width: 64, height: 48, bytes: $0)) }
        XCTAssertEqual(prepared.shape, [1, 256, 192, 3])
        for (a, e) in zip(prepared.affineInput, prepared.cropToImage.array) {
            XCTAssertEqual(Double(a), e, accuracy: 1e-4 * max(1, abs(e)))
        }
        let kp = (0..<34).map { Float(10 + $0) }
        let r = try p.finish(prepared, output: .decoded(keypoints: kp, scores: [Float](repeating: 0.9, count: 17)), timestamp: 1)
        XCTAssertEqual(r.keypoints, kp.map { Double($0) }, "image-pixel keypoints are used as they are")
        let ts = try ModelMetadata.fromFile(Self.goldenDir.appendingPathComponent("metadata/torchscript_crowdpose_float.json"))
        let fp = try frame.withUnsafeBytes { try PosePipeline(metadata: ts, imageWidth: 64, imageHeight: 48).prepare(try RgbImage(width: 64, height: 48, bytes: $0)) }
        XCTAssertNil(fp.pixels)
        XCTAssertEqual(fp.floats?.count, 3 * 256 * 192)
        XCTAssertEqual(Double(fp.floats![128 * 192 + 96]), Double((Float(100) - Float(123.675)) / Float(58.395)), accuracy: 1e-6)
        let coreml = try ModelMetadata.fromFile(Self.goldenDir.appendingPathComponent("metadata/coreml_mpii_simcc.json"))
        XCTAssertTrue(coreml.input.isImage)
    }

    func test_one_euro_errors() throws {
        let f = OneEuroFilter(size: 4)
        _ = try f.filter([0, 0, 0, 0], timestamp: 1)
        XCTAssertThrowsError(try f.filter([0, 0, 0, 0], timestamp: 1))
        XCTAssertThrowsError(try f.filter([0, 0, 0, 0, 0, 0], timestamp: 2))
        XCTAssertThrowsError(try FilterParams(minCutoff: 0))
        XCTAssertThrowsError(try torsoIndices(["nose", "left_shoulder", "right_shoulder", "right_hip"]))
    }

    func test_fill_center_and_stats() throws {
        let m = Affine.fillCenter(imageWidth: 480, imageHeight: 640, viewWidth: 1080, viewHeight: 2340)
        XCTAssertEqual(m.mapY(0, 640), 2340, accuracy: 1e-9)
        XCTAssertEqual(m.mapX(240, 0), 540, accuracy: 1e-9)
        let mirrored = Affine.fillCenter(imageWidth: 480, imageHeight: 640, viewWidth: 1080, viewHeight: 2340, mirror: true)
        XCTAssertEqual(mirrored.mapX(0, 0) + m.mapX(0, 0), 1080, accuracy: 1e-9)
        let s = FrameStats(smoothing: 0.5)
        s.onFrame(timestampNs: 0, latencyMs: 10)
        s.onFrame(timestampNs: 33_333_333, latencyMs: 20)
        s.onFrame(timestampNs: 66_666_666, latencyMs: 20)
        XCTAssertEqual(s.fps, 30, accuracy: 1e-3)
        XCTAssertEqual(s.latencyMs, 17.5, accuracy: 1e-9)
    }

    func test_artifact_choice() throws {
        let xnn = String(decoding: FileManager.default.contents(atPath: Self.goldenDir.appendingPathComponent("metadata/executorch_nchw.json").path)!, as: UTF8.self)
        let coreml = xnn.replacingOccurrences(of: "\"backend\": \"xnnpack\"", with: "\"backend\": \"coreml\"")
        XCTAssertNotEqual(coreml, xnn, "fixture backend field not found")
        let files = [
            "starpose_t_coreml_fp32.pte": "", "starpose_t_coreml_fp32.pte.json": coreml,
            "starpose_t_xnnpack_fp32.pte": "", "starpose_t_xnnpack_fp32.pte.json": xnn,
            "manifest.json": "{}", "README.md": "",
        ]
        let read = { (name: String) -> String in files[name]! }
        let android = try ModelMetadata.pickArtifact(Array(files.keys), extension: "pte", excludedBackends: ["coreml"], read: read)
        XCTAssertEqual(android?.model, "starpose_t_xnnpack_fp32.pte")
        XCTAssertEqual(android?.sidecar, "starpose_t_xnnpack_fp32.pte.json")
        XCTAssertEqual(android?.metadata?.backend, "xnnpack")
        let apple = try ModelMetadata.pickArtifact(Array(files.keys), extension: "pte", excludedBackends: [], read: read)
        XCTAssertEqual(apple?.model, "starpose_t_coreml_fp32.pte")
        let bare = try ModelMetadata.pickArtifact(["a_coreml_fp16.pte", "b_xnnpack_fp16.pte"], extension: "pte", excludedBackends: ["coreml"]) { _ in "" }
        XCTAssertEqual(bare?.model, "b_xnnpack_fp16.pte")
        XCTAssertNil(bare?.metadata)
        XCTAssertNil(try ModelMetadata.pickArtifact(["only_coreml_fp32.pte"], extension: "pte", excludedBackends: ["coreml"]) { _ in "" })
        XCTAssertNil(try ModelMetadata.pickArtifact(["x.tflite"], extension: "pte", excludedBackends: []) { _ in "" })
        XCTAssertThrowsError(try ModelMetadata.pickArtifact(["m.pte", "m.pte.json"], extension: "pte", excludedBackends: []) { _ in "{" }) { error in
            XCTAssertTrue(String(describing: error).contains("m.pte.json"))
        }
    }

    func test_image_bounds() throws {
        let short = [UInt8](repeating: 0, count: 299)
        XCTAssertThrowsError(try short.withUnsafeBytes { try RgbImage(width: 10, height: 10, bytes: $0) })
        XCTAssertThrowsError(try Affine(a: 0, b: 0, c: 0, d: 0, e: 0, f: 0).inverse())
        let meta = try ModelMetadata.fromFile(Self.goldenDir.appendingPathComponent("metadata/executorch_nchw.json"))
        let p = try PosePipeline(metadata: meta, imageWidth: 64, imageHeight: 48)
        let frame = [UInt8](repeating: 0, count: 48 * 64 * 3)
        XCTAssertThrowsError(try frame.withUnsafeBytes { try p.prepare(try RgbImage(width: 48, height: 64, bytes: $0)) })
        XCTAssertThrowsError(try ModelMetadata.fromFile(Self.goldenDir.appendingPathComponent("metadata/nope.json")))
        XCTAssertEqual(ModelMetadata.sidecarCandidates("starpose_t.pte"), ["starpose_t.pte.json", "starpose_t.json", "starpose_t.metadata.json", "metadata.json"])
    }
}
