package org.starpose.core

import java.io.File

/** The detector post-processing and the multi-person tracker against tests/golden/detector.json. */
fun runDetector(dir: File, r: Runner) {
    val f = File(dir, "detector.json")
    val det = JsonNode.parse(f.readText(), f.path)
    val tol = det["tolerance"]["decode_abs"].double()
    val geo = det["tolerance"]["geometry_abs"].double()
    val spec = DetectorSpec.fromJson(det["spec"])

    r.test("detector_letterbox") {
        for ((i, c) in det["letterbox"].list().withIndex()) {
            val img = c["image_size"].ints()
            val inp = c["input_size"].ints()
            val lb = letterboxTransform(img[0], img[1], inp[0], inp[1])
            assertClose(lb.scale, c["scale"].double(), geo, "letterbox[$i].scale")
            val size = c["size"].ints()
            expect(lb.width == size[0] && lb.height == size[1]) { "letterbox[$i]: ${lb.width}x${lb.height}, expected ${size.toList()}" }
        }
        assertThrows<IllegalArgumentException>("empty image", "empty") { letterboxTransform(0, 5, 96, 64) }
    }
    r.test("detector_anchors") {
        val (centres, strides) = anchorPoints(spec)
        assertClose(centres, det["anchors"]["centres"].doubles(), 0.0, "anchors.centres")
        assertClose(strides, det["anchors"]["strides"].doubles(), 0.0, "anchors.strides")
    }
    r.test("detector_decode_nms_to_image") {
        val d = det["decode"]
        val (boxes, scores) = decodeDetections(d["logits"].doubles(), d["box_logits"].doubles(), spec)
        assertClose(boxes, d["boxes"].doubles(), tol, "decode.boxes")
        assertClose(scores, d["scores"].doubles(), tol, "decode.scores")
        val keep = nms(boxes, scores, spec.scoreThreshold, spec.iouThreshold, spec.maxDetections)
        expect(keep.contentEquals(d["keep"].ints())) { "decode.keep: ${keep.toList()}, expected ${d["keep"].ints().toList()}" }
        val size = d["image_size"].ints()
        val lb = letterboxTransform(size[0], size[1], spec.inputWidth, spec.inputHeight)
        assertClose(lb.scale, d["scale"].double(), geo, "decode.scale")
        val image = boxesToImage(boxes, keep, lb, size[0], size[1])
        assertClose(image.flatMap { it.toArray().toList() }.toDoubleArray(), d["image_boxes"].doubles(), geo, "decode.image_boxes")
        val pose = d["pose_input_size"].ints()
        for ((k, c) in d["crops"].list().withIndex()) {
            val cs = bboxXywhToCs(image[k], pose[0], pose[1], d["pose_padding"].double())
            assertClose(doubleArrayOf(cs.cx, cs.cy, cs.sw, cs.sh), c["center"].doubles() + c["scale"].doubles(), geo, "decode.crops[$k]")
        }
        // the detector step applies the same NMS to float32 artifact outputs
        val step = PersonDetectorStep(DetectorMetadata(spec, Layout.NHWC, false, "tflite"))
        val found = step.finish(FloatArray(boxes.size) { boxes[it].toFloat() }, FloatArray(scores.size) { scores[it].toFloat() },
                                lb, size[0], size[1])
        expect(found.size == keep.size) { "detector step kept ${found.size}, expected ${keep.size}" }
        assertThrows<MetadataException>("wrong output size", "anchors") { step.finish(FloatArray(8), FloatArray(2), lb, size[0], size[1]) }
    }
    r.test("detector_nms") {
        for ((i, c) in det["nms"].list().withIndex()) {
            val keep = nms(c["boxes"].doubles(), c["scores"].doubles(), c["score_threshold"].double(),
                           c["iou_threshold"].double(), c["max_detections"].int())
            expect(keep.contentEquals(c["keep"].ints())) { "nms[$i]: ${keep.toList()}, expected ${c["keep"].ints().toList()}" }
        }
    }
    r.test("detector_match_by_iou") {
        for ((i, c) in det["match_by_iou"].list().withIndex()) {
            fun boxes(n: JsonNode) = n.doubles().toList().chunked(4).map { Box(it[0], it[1], it[2], it[3]) }
            val pairs = matchByIou(boxes(c["tracks"]), boxes(c["detections"]), c["iou_threshold"].double())
            val want = c["pairs"].list().map { p -> p.ints().let { Pair(it[0], it[1]) } }
            expect(pairs == want) { "match_by_iou[$i]: $pairs, expected $want" }
        }
    }
    r.test("detector_multi_tracker") {
        val m = det["multi_tracker"]
        val size = m["image_size"].doubles()
        val p = m["params"]
        val tracker = MultiPersonTracker(
            size[0], size[1], m["torso"].ints(), RoiParams(scoreThreshold = p["score_threshold"].double()),
            MultiTrackParams(p["detect_every"].int(), p["max_people"].int(), p["iou_threshold"].double(), p["duplicate_iou"].double()),
            filterParams = null,
        )
        for ((i, fr) in m["frames"].list().withIndex()) {
            expect(tracker.due() == fr["due"].bool()) { "frame $i: due ${tracker.due()}, expected ${fr["due"].bool()}" }
            fr.opt("detections")?.let { dets ->
                val boxes = dets.doubles().toList().chunked(4).map { Box(it[0], it[1], it[2], it[3]) }
                tracker.assign(boxes, fr["detection_scores"].doubles().toList())
            }
            val before = fr["tracks_before"].list()
            expect(tracker.tracks.map { it.id } == before.map { it["id"].int() }) { "frame $i: tracks ${tracker.tracks.map { it.id }}" }
            for ((k, t) in before.withIndex()) assertClose(tracker.tracks[k].box.toArray(), t["box"].doubles(), geo, "frame $i track ${t["id"].int()} box")
            for (u in fr["updates"].list()) {
                val track = tracker.tracks.first { it.id == u["id"].int() }
                tracker.update(track, u["keypoints"].doubles(), u["scores"].floats())
                expect(track.lost == u["lost"].bool()) { "frame $i track ${track.id}: lost ${track.lost}" }
                assertClose(track.box.toArray(), u["next_box"].doubles(), geo, "frame $i track ${track.id} next box")
            }
            tracker.advance()
            expect(tracker.tracks.map { it.id } == fr["tracks_after"].ints().toList()) { "frame $i: after ${tracker.tracks.map { it.id }}" }
        }
    }
    r.test("detector_people_pipeline") {
        val d = det["decode"]
        val (boxes, scores) = decodeDetections(d["logits"].doubles(), d["box_logits"].doubles(), spec)
        val size = d["image_size"].ints()
        val pose = PosePipeline(ModelMetadata.fromFile(File(dir, "metadata/executorch_nchw.json")), size[0], size[1])
        val people = PeoplePipeline(pose, PersonDetectorStep(DetectorMetadata(spec, Layout.NHWC, false, "tflite")), maxPeople = 2,
                                    detectEvery = 2)
        expect(people.needsDetection()) { "the first frame needs the detector" }
        val lb = letterboxTransform(size[0], size[1], spec.inputWidth, spec.inputHeight)
        val found = people.onDetections(FloatArray(boxes.size) { boxes[it].toFloat() }, FloatArray(scores.size) { scores[it].toFloat() }, lb)
        expect(found.size == 2) { "maxPeople 2: ${found.size} detections" }
        val frame = RgbImage(size[0], size[1], ByteArray(size[0] * size[1] * 3))
        val prepared = people.preparePeople(frame)
        expect(prepared.map { it.second.box } == found.map { it.box }) { "crops do not come from the detections" }
        val k = pose.metadata.spec.numKeypoints
        // a model that puts every keypoint at the crop centre with score 0.9: the torso is
        // degenerate (zero extent), so each person is lost and the next frame re-detects
        val outputs = prepared.map { (_, input) ->
            val w = pose.metadata.input.width.toFloat()
            val h = pose.metadata.input.height.toFloat()
            ModelOutput.Decoded(FloatArray(2 * k) { if (it % 2 == 0) w / 2 else h / 2 }, FloatArray(k) { 0.9f })
        }
        val poses = people.finishPeople(prepared, outputs, 1.0)
        expect(poses.map { it.trackId } == listOf(0, 1)) { "track ids ${poses.map { it.trackId }}" }
        for ((p, pair) in poses.zip(prepared)) {
            val c = pair.second.centerScale
            assertClose(p.keypoints[0], c.cx, 1e-6, "person ${p.trackId} keypoint x")
        }
        expect(people.needsDetection()) { "lost people force a detection" }
        assertThrows<IllegalArgumentException>("output count", "pose outputs") { people.finishPeople(prepared, outputs.take(1), 2.0) }
    }
    r.test("detector_artifact_choice") {
        val names = listOf("person_detector_xnnpack_fp32.pte", "person_detector_xnnpack_fp32.pte.json",
                           "starpose_t_xnnpack_fp32.pte", "starpose_t_xnnpack_fp32.pte.json")
        val pose = File(dir, "metadata/executorch_nchw.json").readText()
        val detector = """{"kind": "person_detector", "format": "executorch", "detector_spec": {"input_size": [96, 64],
            "mean": [1, 1, 1], "std": [1, 1, 1], "strides": [8, 16, 32], "reg_max": 10, "pad_value": 0, "score_threshold": 0.2,
            "iou_threshold": 0.6, "max_detections": 3}, "input": {"width": 96, "height": 64, "layout": "NHWC", "type": "tensor"},
            "outputs": {"boxes": {"shape": [1, 126, 4]}, "scores": {"shape": [1, 126]}}}"""
        val read = { n: String -> if (n.startsWith(DETECTOR_PREFIX)) detector else pose }
        val choice = ModelMetadata.pickArtifact(names, "pte", setOf("coreml"), read)
        expect(choice?.model == "starpose_t_xnnpack_fp32.pte") { "pose artifact: ${choice?.model}" }
        val det = pickDetectorArtifact(names, "pte", read)
        expect(det?.first == "person_detector_xnnpack_fp32.pte" && det.second.numAnchors == spec.numAnchors) { "detector artifact: ${det?.first}" }
        expect(pickDetectorArtifact(names.filter { !it.endsWith(".json") }, "pte", read) == null) { "a detector without sidecar was picked" }
    }
    r.test("detector_metadata") {
        val text = """{"kind": "person_detector", "detector_spec": {}}"""
        assertThrows<MetadataException>("spec without fields", "input_size") { DetectorMetadata.parse(text, "det.json") }
        assertThrows<MetadataException>("wrong kind", "kind") { DetectorMetadata.parse("""{"kind": "pose"}""", "det.json") }
    }
}
