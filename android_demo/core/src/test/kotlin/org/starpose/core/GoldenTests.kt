package org.starpose.core

import java.io.File
import kotlin.math.abs
import kotlin.system.exitProcess

/**
 * The core's tests: every case of the shared golden fixture (tests/golden, written by the numpy
 * reference) plus unit checks of what the fixture cannot express. A self-contained runner, so
 * that it works with nothing but kotlinc and java (no JUnit jar offline):
 *
 *   java -cp core-tests.jar org.starpose.core.GoldenTestsKt <path/to/tests/golden>
 *
 * prints one line per test and `N passed, M failed`, and exits 1 on any failure. Under Gradle the
 * same entry point runs as `./gradlew :core:goldenTest` (wired into `check`).
 */
class AssertionFailed(message: String) : Exception(message)

fun fail(message: String): Nothing = throw AssertionFailed(message)

fun expect(condition: Boolean, message: () -> String) {
    if (!condition) fail(message())
}

fun assertClose(actual: Double, expected: Double, tol: Double, what: String) {
    if (!(abs(actual - expected) <= tol)) fail("$what: got $actual, expected $expected (tolerance $tol)")
}

fun assertClose(actual: DoubleArray, expected: DoubleArray, tol: Double, what: String) {
    expect(actual.size == expected.size) { "$what: ${actual.size} values, expected ${expected.size}" }
    for (i in actual.indices) assertClose(actual[i], expected[i], tol, "$what[$i]")
}

inline fun <reified T : Throwable> assertThrows(what: String, contains: String, block: () -> Unit) {
    try {
        block()
    } catch (e: Throwable) {
        if (e !is T) fail("$what: threw ${e::class.simpleName} (${e.message}), expected ${T::class.simpleName}")
        expect(e.message?.contains(contains) == true) { "$what: message \"${e.message}\" does not mention \"$contains\"" }
        return
    }
    fail("$what: nothing thrown, expected ${T::class.simpleName} mentioning \"$contains\"")
}

class Runner {
    var passed = 0
    val failures = ArrayList<String>()

    fun test(name: String, body: () -> Unit) {
        try {
            body()
            passed++
            println("PASS $name")
        } catch (e: Throwable) {
            failures.add("$name: ${e.message}")
            println("FAIL $name: ${e::class.simpleName}: ${e.message}")
        }
    }
}

private fun JsonNode.affine(): Affine = Affine.of(list().flatMap { it.doubles().toList() }.toDoubleArray())

private fun JsonNode.boxOrNull(): Box? = if (isNull) null else Box.of(doubles())

private fun csArray(cs: CenterScale) = doubleArrayOf(cs.cx, cs.cy, cs.sw, cs.sh)

fun runGolden(dir: File, r: Runner) {
    fun load(name: String): JsonNode {
        val f = File(dir, name)
        return JsonNode.parse(f.readText(), f.path)
    }
    val proc = load("processing.json")
    val trk = load("tracking.json")
    val tol = proc["tolerance"]
    val geo = tol["geometry_abs"].double()

    r.test("boxes_xywh") {
        for ((i, c) in proc["boxes_xywh"].list().withIndex()) {
            val size = c["input_size"].ints()
            val cs = bboxXywhToCs(Box.of(c["bbox_xywh"].doubles()), size[0], size[1], c["padding"].double())
            assertClose(csArray(cs), c["center"].doubles() + c["scale"].doubles(), geo, "boxes_xywh[$i]")
        }
    }
    r.test("boxes_xyxy") {
        for ((i, c) in proc["boxes_xyxy"].list().withIndex()) {
            val b = c["bbox_xyxy"].doubles()
            val size = c["input_size"].ints()
            val cs = bboxXyxyToCs(b[0], b[1], b[2], b[3], size[0], size[1], c["padding"].double())
            assertClose(csArray(cs), c["center"].doubles() + c["scale"].doubles(), geo, "boxes_xyxy[$i]")
        }
    }
    r.test("affine") {
        for ((i, c) in proc["affine"].list().withIndex()) {
            val ctr = c["center"].doubles()
            val scl = c["scale"].doubles()
            val out = c["output_size"].ints()
            val cs = CenterScale(ctr[0], ctr[1], scl[0], scl[1])
            val m = getWarpMatrix(cs, c["rot"].double(), out[0], out[1])
            val inv = getWarpMatrix(cs, c["rot"].double(), out[0], out[1], inverse = true)
            assertClose(m.toArray(), c["matrix"].affine().toArray(), geo, "affine[$i].matrix")
            assertClose(inv.toArray(), c["inverse"].affine().toArray(), geo, "affine[$i].inverse")
            assertClose(c["matrix"].affine().inverse().toArray(), c["inverse"].affine().toArray(), geo, "affine[$i] inverse()")
            val pts = c["points"].list().flatMap { it.doubles().toList() }.toDoubleArray()
            val mapped = m.apply(pts)
            assertClose(mapped, c["mapped"].list().flatMap { it.doubles().toList() }.toDoubleArray(), geo, "affine[$i].mapped")
            assertClose(m.inverse().apply(mapped), c["mapped_back"].list().flatMap { it.doubles().toList() }.toDoubleArray(), geo, "affine[$i].mapped_back")
            val roundTrip = m.then(inv)
            assertClose(roundTrip.toArray(), Affine.IDENTITY.toArray(), 1e-9, "affine[$i] m.then(inv)")
        }
    }
    r.test("warp") {
        val img = proc["warp_image"]
        val w = img["width"].int()
        val h = img["height"].int()
        val rgb = img["rgb_hwc"].ints()
        val src = RgbImage(w, h, ByteArray(rgb.size) { rgb[it].toByte() })
        val maxAbs = tol["warp_max_abs"].int()
        for ((i, c) in proc["warp"].list().withIndex()) {
            val out = c["output_size"].ints()
            val ctr = c["center"].doubles()
            val scl = c["scale"].doubles()
            val m = getWarpMatrix(CenterScale(ctr[0], ctr[1], scl[0], scl[1]), c["rot"].double(), out[0], out[1])
            assertClose(m.toArray(), c["matrix"].affine().toArray(), geo, "warp[$i].matrix")
            val crop = warpAffineBilinear(src, m, out[0], out[1], Layout.NHWC)
            val expected = c["crop_hwc"].ints()
            expect(crop.size == expected.size) { "warp[$i]: ${crop.size} values, expected ${expected.size}" }
            var worst = 0
            for (j in crop.indices) worst = maxOf(worst, abs((crop[j].toInt() and 0xFF) - expected[j]))
            expect(worst <= maxAbs) { "warp[$i]: max abs difference $worst > $maxAbs" }
            val planar = warpAffineBilinear(src, m, out[0], out[1], Layout.NCHW)
            val plane = out[0] * out[1]
            for (p in 0 until plane) for (ch in 0 until 3) {
                expect(planar[ch * plane + p] == crop[p * 3 + ch]) { "warp[$i]: NCHW differs from NHWC at pixel $p channel $ch" }
            }
            // The same pixels read through an RGBA buffer with padded rows (CameraX layout).
            val stride = w * 4 + 8
            val rgba = ByteArray(stride * h)
            for (y in 0 until h) for (x in 0 until w) for (ch in 0 until 3) rgba[y * stride + x * 4 + ch] = rgb[(y * w + x) * 3 + ch].toByte()
            val viaRgba = warpAffineBilinear(RgbImage(w, h, rgba, 4, stride), m, out[0], out[1], Layout.NHWC)
            expect(viaRgba.contentEquals(crop)) { "warp[$i]: RGBA-strided source gives a different crop" }
        }
    }
    r.test("normalize") {
        val ntol = tol["normalize_abs"].double()
        for ((i, c) in proc["normalize"].list().withIndex()) {
            val rgb = c["rgb_hwc"].ints()
            val out = normalizeImage(ByteArray(rgb.size) { rgb[it].toByte() }, c["width"].int(), c["height"].int(), c["mean"].doubles(), c["std"].doubles())
            assertClose(DoubleArray(out.size) { out[it].toDouble() }, c["output_chw"].doubles(), ntol, "normalize[$i]")
        }
    }
    r.test("simcc") {
        for (c in proc["simcc"].list()) {
            val name = c["name"].string()
            val k = c["num_keypoints"].int()
            val kp = decodeSimcc(c["simcc_x"].floats(), c["simcc_y"].floats(), k, c["split_ratio"].double())
            assertClose(DoubleArray(2 * k) { kp.xy[it].toDouble() }, c["keypoints"].doubles(), tol["simcc_keypoints_abs"].double(), "simcc $name keypoints")
            assertClose(DoubleArray(k) { kp.scores[it].toDouble() }, c["scores"].doubles(), tol["simcc_scores_abs"].double(), "simcc $name scores")
            val image = keypointsToImage(kp, c["crop_to_image"].affine())
            assertClose(image, c["keypoints_image"].doubles(), geo, "simcc $name keypoints_image")
        }
    }
    r.test("one_euro") {
        val ftol = tol["filter_abs"].double()
        for ((i, c) in trk["one_euro"].list().withIndex()) {
            val p = c["params"]
            val n = c["num_points"].int()
            val f = OneEuroFilter(2 * n, FilterParams(p["min_cutoff"].double(), p["beta"].double(), p["d_cutoff"].double()))
            val ts = c["timestamps"].doubles()
            val samples = c["samples"].list()
            val valid = c["valid"].list()
            val outputs = c["outputs"].list()
            for (t in ts.indices) {
                val v = valid[t].list().map { it.bool() }.toBooleanArray()
                val got = f.filterKeypoints(samples[t].doubles(), ts[t], v)
                assertClose(got, outputs[t].doubles(), ftol, "one_euro[$i] frame $t")
            }
        }
    }
    r.test("roi") {
        val roi = trk["roi"]
        val rtol = tol["roi_abs"].double()
        val size = roi["image_size"].doubles()
        val inSize = roi["input_size"].ints()
        val torso = torsoIndices(roi["keypoint_names"].strings())
        expect(torso.contentEquals(roi["torso"].ints())) { "torso indices ${torso.toList()} != ${roi["torso"].ints().toList()}" }
        val p = roi["params"]
        val params = RoiParams(p["score_threshold"].double(), p["torso_factor"].double(), p["body_factor"].double())
        val tracker = RoiTracker(size[0], size[1], torso, params)
        for ((i, fr) in roi["frames"].list().withIndex()) {
            assertClose(tracker.box.toArray(), fr["box_used"].doubles(), rtol, "roi frame $i box_used")
            val cs = bboxXywhToCs(tracker.box, inSize[0], inSize[1], roi["padding"].double())
            assertClose(csArray(cs), fr["center"].doubles() + fr["scale"].doubles(), rtol, "roi frame $i center/scale")
            val xy = fr["keypoints"].doubles()
            val scores = fr["scores"].floats()
            val expectRoi = fr["roi"].boxOrNull()
            val got = roiFromKeypoints(xy, scores, size[0], size[1], torso, params)
            expect((got == null) == (expectRoi == null)) { "roi frame $i: got $got, expected $expectRoi" }
            if (got != null && expectRoi != null) assertClose(got.toArray(), expectRoi.toArray(), rtol, "roi frame $i roi")
            val next = tracker.update(xy, scores)
            assertClose(next.toArray(), fr["next_box"].doubles(), rtol, "roi frame $i next_box")
            expect(tracker.lost == fr["lost"].bool()) { "roi frame $i: lost ${tracker.lost}, expected ${fr["lost"].bool()}" }
        }
    }
    r.test("skeleton") {
        for (c in trk["skeleton"].list()) {
            val spec = c["spec"].string()
            val skeleton = c["skeleton"].list().map { it.ints() }
            val dl = skeletonDrawList(c["scores"].floats(), skeleton, c["keypoint_names"].strings(), c["threshold"].double())
            val points = c["points"].list().map { pt -> pt.list().let { Pair(it[0].int(), it[1].string()) } }
            val lines = c["lines"].list().map { ln -> ln.list().let { Triple(it[0].int(), it[1].int(), it[2].string()) } }
            expect(dl.points.map { Pair(it.index, it.side.label) } == points) { "skeleton $spec points ${dl.points} != $points" }
            expect(dl.lines.map { Triple(it.a, it.b, it.side.label) } == lines) { "skeleton $spec lines ${dl.lines} != $lines" }
        }
    }
    r.test("pipeline") {
        val pl = trk["pipeline"]
        val meta = ModelMetadata.fromFile(File(dir, pl["metadata"].string()))
        val size = pl["image_size"].ints()
        val rp = pl["roi_params"]
        val fp = pl["filter_params"]
        val pipeline = PosePipeline(
            meta, size[0], size[1],
            RoiParams(rp["score_threshold"].double(), rp["torso_factor"].double(), rp["body_factor"].double()),
            FilterParams(fp["min_cutoff"].double(), fp["beta"].double(), fp["d_cutoff"].double()),
        )
        val frame = RgbImage(size[0], size[1], ByteArray(size[0] * size[1] * 3) { (it % 251).toByte() })
        for ((i, fr) in pl["frames"].list().withIndex()) {
            val prepared = pipeline.prepare(frame)
            assertClose(prepared.box.toArray(), fr["box"].doubles(), geo, "pipeline frame $i box")
            assertClose(csArray(prepared.centerScale), fr["center"].doubles() + fr["scale"].doubles(), geo, "pipeline frame $i center/scale")
            assertClose(prepared.imageToCrop.toArray(), fr["image_to_crop"].affine().toArray(), geo, "pipeline frame $i image_to_crop")
            expect(prepared.pixels?.size == 3 * meta.input.width * meta.input.height) { "pipeline frame $i: crop tensor size" }
            expect(prepared.shape.contentEquals(longArrayOf(1, 3, 256, 192))) { "pipeline frame $i: shape ${prepared.shape.toList()}" }
            val result = pipeline.finish(prepared, ModelOutput.Decoded(fr["model_keypoints_crop"].floats(), fr["model_scores"].floats()), fr["timestamp"].double())
            assertClose(result.keypoints, fr["keypoints_image"].doubles(), geo, "pipeline frame $i keypoints_image")
            assertClose(result.smoothed, fr["smoothed"].doubles(), tol["filter_abs"].double(), "pipeline frame $i smoothed")
            assertClose(result.nextBox.toArray(), fr["next_box"].doubles(), geo, "pipeline frame $i next_box")
            expect(result.lost == fr["lost"].bool()) { "pipeline frame $i: lost ${result.lost}, expected ${fr["lost"].bool()}" }
        }
    }
    val cases = load("metadata_cases.json")
    r.test("metadata_valid") {
        for (c in cases["valid"].list()) {
            val file = File(dir, c["file"].string())
            val m = ModelMetadata.fromFile(file)
            val e = c["expect"]
            val got = mapOf(
                "format" to m.format, "variant" to m.variant, "input_width" to m.input.width, "input_height" to m.input.height,
                "layout" to m.input.layout.name, "dtype" to m.input.dtype.label, "normalize_in_app" to m.input.normalizeInApp,
                "image_input" to m.input.isImage,
                "affine_input" to m.affineInput.present, "num_keypoints" to m.spec.numKeypoints, "skeleton_pairs" to m.spec.skeleton.size,
                "first_keypoint" to m.spec.keypointNames[0], "outputs" to (if (m.outputs is OutputsInfo.Decoded) "decoded" else "simcc"),
                "keypoints_in_image_pixels" to ((m.outputs as? OutputsInfo.Decoded)?.units == KeypointUnits.IMAGE_PIXELS),
                "simcc_split_ratio" to m.spec.simccSplitRatio, "bbox_padding" to m.spec.bboxPadding,
                "mean" to m.spec.mean.toList(), "std" to m.spec.std.toList(),
            )
            for ((key, node) in e.obj()) {
                val expected: Any? = when (node) {
                    is Double -> if (got[key] is Int) node.toInt() else node
                    else -> node
                }
                expect(got[key] == expected) { "${file.name}: $key is ${got[key]}, expected $expected" }
            }
            expect(got.keys == e.obj().keys) { "${file.name}: expectation keys ${e.obj().keys} != ${got.keys}" }
        }
    }
    r.test("metadata_invalid") {
        for (c in cases["invalid"].list()) {
            val name = c["name"].string()
            assertThrows<MetadataException>("metadata_invalid $name", c["error"].string()) {
                ModelMetadata.parse(c["text"].string(), "$name.json")
            }
            assertThrows<MetadataException>("metadata_invalid $name names the file", "$name.json") {
                ModelMetadata.parse(c["text"].string(), "$name.json")
            }
        }
    }
}

fun runUnit(dir: File, r: Runner) {
    r.test("json_parser") {
        val v = Json.parse("""{"a": [1, -2.5e3, 0.125, true, false, null], "s": "q\"\\\/\n\u00e9", "o": {}}""") as Map<*, *>
        expect(v["a"] == listOf(1.0, -2500.0, 0.125, true, false, null)) { "array ${v["a"]}" }
        expect(v["s"] == "q\"\\/\n\u00e9") { "string ${v["s"]}" }
        expect(v["o"] == emptyMap<String, Any?>()) { "object ${v["o"]}" }
        expect(Json.parse("0.1") == 0.1 && Json.parse("1E-7") == 1e-7) { "number round trip" }
        for (bad in listOf("", "01", "1.", "-", "[1,]", "{\"a\":1,\"a\":2}", "\"\\x\"", "[1 2]", "nul", "{\"a\" 1}", "NaN", "\"tab\there\"")) {
            assertThrows<JsonException>("json rejects '$bad'", "invalid JSON") { Json.parse(bad, "t.json") }
        }
        assertThrows<JsonException>("json error position", "line 2, column 3") { Json.parse("[1,\n  x]", "t.json") }
        assertThrows<JsonException>("json depth", "nesting") { Json.parse("[".repeat(600) + "]".repeat(600)) }
    }
    r.test("output_classification") {
        val meta = ModelMetadata.fromFile(File(dir, "metadata/executorch_nchw.json"))
        val kp = FloatArray(34) { it.toFloat() }
        val sc = FloatArray(17) { 0.5f }
        // Converters may return the scores first.
        val out = ModelOutput.fromTensors(listOf(longArrayOf(1, 17), longArrayOf(1, 17, 2)), listOf(sc, kp), meta)
        expect(out is ModelOutput.Decoded && out.keypoints === kp && out.scores === sc) { "decoded outputs not matched by shape" }
        assertThrows<MetadataException>("wrong output shapes", "metadata promises") {
            ModelOutput.fromTensors(listOf(longArrayOf(1, 16, 2), longArrayOf(1, 16)), listOf(FloatArray(32), FloatArray(16)), meta)
        }
        val mpii = ModelMetadata.fromFile(File(dir, "metadata/coreml_mpii_simcc.json"))
        val x = FloatArray(16 * 512)
        val y = FloatArray(16 * 512)
        val simcc = ModelOutput.fromTensors(listOf(longArrayOf(1, 16, 512), longArrayOf(1, 16, 512)), listOf(x, y), mpii)
        expect(simcc is ModelOutput.Simcc && simcc.x === x && simcc.y === y) { "equal-length SimCC outputs must keep x, y order" }
    }
    r.test("affine_input_and_float_input") {
        val tfl = ModelMetadata.fromFile(File(dir, "metadata/tflite_nhwc_affine.json"))
        val p = PosePipeline(tfl, 64, 48)
        val prepared = p.prepare(RgbImage(64, 48, ByteArray(64 * 48 * 3) { 100 }))
        expect(prepared.shape.contentEquals(longArrayOf(1, 256, 192, 3))) { "NHWC shape ${prepared.shape.toList()}" }
        val a = prepared.affineInput
        val expected = prepared.cropToImage.toArray()
        for (i in 0 until 6) assertClose(a[i].toDouble(), expected[i], 1e-4 * maxOf(1.0, abs(expected[i])), "affine input $i")
        // Image-pixel outputs are used as they are.
        val kp = FloatArray(34) { 10f + it }
        val r2 = p.finish(prepared, ModelOutput.Decoded(kp, FloatArray(17) { 0.9f }), 1.0)
        assertClose(r2.keypoints, DoubleArray(34) { 10.0 + it }, 0.0, "image-pixel keypoints")
        val ts = ModelMetadata.fromFile(File(dir, "metadata/torchscript_crowdpose_float.json"))
        val fp = PosePipeline(ts, 64, 48).prepare(RgbImage(64, 48, ByteArray(64 * 48 * 3) { 100 }))
        expect(fp.pixels == null && fp.floats != null && fp.floats!!.size == 3 * 256 * 192) { "float input not normalized in app" }
        // The crop covers the whole frame (full-frame box); its centre pixel is 100 in every channel.
        val centre = fp.floats!![128 * 192 + 96]
        assertClose(centre.toDouble(), ((100f - 123.675f) / 58.395f).toDouble(), 1e-6, "normalized centre pixel")
    }
    r.test("one_euro_errors") {
        val f = OneEuroFilter(4)
        f.filter(DoubleArray(4), 1.0)
        assertThrows<IllegalArgumentException>("repeated timestamp", "timestamps must increase") { f.filter(DoubleArray(4), 1.0) }
        assertThrows<IllegalArgumentException>("size change", "reset") { f.filter(DoubleArray(6), 2.0) }
        assertThrows<IllegalArgumentException>("bad params", "min_cutoff") { FilterParams(minCutoff = 0.0) }
        assertThrows<IllegalArgumentException>("no torso", "left_hip") { torsoIndices(listOf("nose", "left_shoulder", "right_shoulder", "right_hip")) }
    }
    r.test("fill_center_and_stats") {
        // A 640x480 frame in a 1080x2340 portrait view: height decides, sides cropped.
        val m = Affine.fillCenter(480.0, 640.0, 1080.0, 2340.0)
        assertClose(m.mapY(0.0, 640.0), 2340.0, 1e-9, "fill bottom")
        assertClose(m.mapX(240.0, 0.0), 540.0, 1e-9, "fill centre x")
        val mirrored = Affine.fillCenter(480.0, 640.0, 1080.0, 2340.0, mirror = true)
        assertClose(mirrored.mapX(0.0, 0.0) + m.mapX(0.0, 0.0), 1080.0, 1e-9, "mirror")
        val s = FrameStats(smoothing = 0.5)
        s.onFrame(0, 10.0)
        s.onFrame(33_333_333, 20.0)
        s.onFrame(66_666_666, 20.0)
        assertClose(s.fps, 30.0, 1e-3, "fps")
        assertClose(s.latencyMs, 17.5, 1e-9, "latency")
    }
    r.test("image_bounds") {
        assertThrows<IllegalArgumentException>("short buffer", "too small") { RgbImage(10, 10, ByteArray(299)) }
        assertThrows<IllegalArgumentException>("singular", "singular") { Affine(0.0, 0.0, 0.0, 0.0, 0.0, 0.0).inverse() }
        val p = PosePipeline(ModelMetadata.fromFile(File(dir, "metadata/executorch_nchw.json")), 64, 48)
        assertThrows<IllegalArgumentException>("frame size", "pipeline was built for") { p.prepare(RgbImage(48, 64, ByteArray(48 * 64 * 3))) }
        assertThrows<MetadataException>("missing file", "not found") { ModelMetadata.fromFile(File(dir, "metadata/nope.json")) }
        expect(ModelMetadata.sidecarCandidates("starpose_t.pte") == listOf("starpose_t.pte.json", "starpose_t.json", "starpose_t.metadata.json", "metadata.json")) { "sidecar names" }
    }
}

fun runArtifactChoice(dir: File, r: Runner) {
    r.test("artifact_choice") {
        val xnn = File(dir, "metadata/executorch_nchw.json").readText()
        val coreml = xnn.replace("\"backend\": \"xnnpack\"", "\"backend\": \"coreml\"")
        expect(coreml != xnn) { "fixture backend field not found" }
        val files = mapOf(
            "starpose_t_coreml_fp32.pte" to "", "starpose_t_coreml_fp32.pte.json" to coreml,
            "starpose_t_xnnpack_fp32.pte" to "", "starpose_t_xnnpack_fp32.pte.json" to xnn,
            "manifest.json" to "{}", "README.md" to "",
        )
        val read = { name: String -> files.getValue(name) }
        val android = ModelMetadata.pickArtifact(files.keys.toList(), "pte", setOf("coreml"), read)
        expect(android?.model == "starpose_t_xnnpack_fp32.pte" && android.sidecar == "starpose_t_xnnpack_fp32.pte.json") { "picked ${android?.model}" }
        expect(android?.metadata?.backend == "xnnpack") { "metadata not parsed" }
        val apple = ModelMetadata.pickArtifact(files.keys.toList(), "pte", emptySet(), read)
        expect(apple?.model == "starpose_t_coreml_fp32.pte") { "picked ${apple?.model}" }
        // Without sidecars the backend is read from the exporter's file name.
        val bare = ModelMetadata.pickArtifact(listOf("a_coreml_fp16.pte", "b_xnnpack_fp16.pte"), "pte", setOf("coreml")) { "" }
        expect(bare?.model == "b_xnnpack_fp16.pte" && bare.metadata == null) { "picked ${bare?.model}" }
        expect(ModelMetadata.pickArtifact(listOf("only_coreml_fp32.pte"), "pte", setOf("coreml")) { "" } == null) { "a Core ML program must not be picked" }
        expect(ModelMetadata.pickArtifact(listOf("x.tflite"), "pte", emptySet()) { "" } == null) { "wrong extension picked" }
        assertThrows<MetadataException>("bad sidecar", "m.pte.json") {
            ModelMetadata.pickArtifact(listOf("m.pte", "m.pte.json"), "pte", emptySet()) { "{" }
        }
    }
}

fun main(args: Array<String>) {
    val dir = File(args.firstOrNull() ?: System.getenv("STARPOSE_GOLDEN") ?: "../../tests/golden")
    if (!File(dir, "processing.json").isFile) {
        System.err.println("golden fixture not found in ${dir.path} (pass the tests/golden folder as the first argument)")
        exitProcess(2)
    }
    val r = Runner()
    runGolden(dir, r)
    runUnit(dir, r)
    runArtifactChoice(dir, r)
    runDetector(dir, r)
    for (f in r.failures) System.err.println("FAILED $f")
    println("${r.passed} passed, ${r.failures.size} failed")
    exitProcess(if (r.failures.isEmpty()) 0 else 1)
}
