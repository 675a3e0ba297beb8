package org.starpose.core

import java.io.File

/** A metadata document that cannot drive the app; the message names the file and the field. */
class MetadataException(message: String) : IllegalArgumentException(message)

enum class InputDType(val label: String) { UINT8("uint8"), FLOAT32("float32") }

enum class KeypointUnits(val label: String) { CROP_PIXELS("crop pixels"), IMAGE_PIXELS("image pixels") }

/** The model contract (`PoseSpec.to_dict()`), the fields the app needs. */
class PoseSpecInfo(
    val name: String,
    val keypointNames: List<String>,
    val skeleton: List<IntArray>,
    val flipPairs: List<IntArray>,
    val inputWidth: Int,
    val inputHeight: Int,
    val mean: DoubleArray,
    val std: DoubleArray,
    val simccSplitRatio: Double,
    val simccLengths: IntArray,
    val bboxPadding: Double,
) {
    val numKeypoints: Int get() = keypointNames.size
}

class InputInfo(
    val name: String,
    val dtype: InputDType,
    val layout: Layout,
    val width: Int,
    val height: Int,
    /** True when the app must apply `(x - mean) / std` itself (`normalization: external`). */
    val normalizeInApp: Boolean,
    /** True for a Core ML image input (`type: image`): feed a pixel buffer, not a tensor. */
    val isImage: Boolean = false,
) {
    /** The tensor shape the model takes. */
    val shape: LongArray
        get() = if (layout == Layout.NCHW) longArrayOf(1, 3, height.toLong(), width.toLong()) else longArrayOf(1, height.toLong(), width.toLong(), 3)
}

class AffineInputInfo(val name: String, val present: Boolean)

/** What the graph returns: decoded keypoints and scores, or the raw SimCC vectors. */
sealed class OutputsInfo {
    class Decoded(val units: KeypointUnits) : OutputsInfo()

    class Simcc(val lengthX: Int, val lengthY: Int) : OutputsInfo()
}

/** A model file picked for this platform, with its sidecar (name and parsed metadata) if any. */
class ArtifactChoice(val model: String, val sidecar: String?, val metadata: ModelMetadata?)

/**
 * The metadata JSON every exporter writes beside (or into) an artifact: the one place the app
 * learns input size, layout, keypoint names, skeleton and output form, instead of re-typing them.
 */
class ModelMetadata(
    val formatVersion: Int,
    val variant: String,
    val weights: String,
    val spec: PoseSpecInfo,
    val input: InputInfo,
    val affineInput: AffineInputInfo,
    val outputs: OutputsInfo,
    val format: String,
    val precision: String,
    val backend: String,
) {
    companion object {
        const val FORMAT_VERSION = 1

        /**
         * Sidecar names tried for a model file `name.ext`, in order: the exporters write
         * `name.ext.json` (mobile_export.metadata.sidecar_path); the others are for hand-made
         * artifacts.
         */
        fun sidecarCandidates(modelFileName: String): List<String> {
            val stem = modelFileName.substringBeforeLast('.')
            return listOf("$modelFileName.json", "$stem.json", "$stem.metadata.json", "metadata.json")
        }

        /**
         * Choose the model file among [names] (a folder listing) for this platform: the first
         * `*.extension` in name order whose backend (from its sidecar, else its `_backend_` name
         * part) is not in [excludedBackends] — the ExecuTorch export writes an XNNPACK and a
         * Core ML program side by side, and Android cannot run the Core ML one. [read] returns a
         * file's text; the chosen sidecar is parsed (and so validated) here.
         */
        fun pickArtifact(names: List<String>, extension: String, excludedBackends: Set<String>, read: (String) -> String): ArtifactChoice? {
            // the person detector exported next to the pose model has its own metadata (DetectorMetadata)
            for (model in names.filter { it.endsWith(".$extension") && !it.startsWith(DETECTOR_PREFIX) }.sorted()) {
                val sidecar = sidecarCandidates(model).firstOrNull { it in names }
                val metadata = sidecar?.let { parse(read(it), it) }
                val excluded = if (metadata != null) metadata.backend in excludedBackends else excludedBackends.any { "_${it}_" in model }
                if (!excluded) return ArtifactChoice(model, sidecar, metadata)
            }
            return null
        }

        fun fromFile(file: File): ModelMetadata {
            if (!file.isFile) throw MetadataException("${file.path}: metadata file not found")
            return parse(file.readText(Charsets.UTF_8), file.path)
        }

        /** Parse and validate; every problem throws [MetadataException] naming [source] and the field. */
        fun parse(text: String, source: String): ModelMetadata {
            val root = try {
                JsonNode.parse(text, source)
            } catch (e: JsonException) {
                throw MetadataException(e.message ?: "$source: invalid JSON")
            }
            if (root.value !is Map<*, *>) root.fail("must be a JSON object (the artifact metadata)")
            return fromJson(root)
        }

        fun fromJson(root: JsonNode): ModelMetadata {
            val version = root["format_version"]
            if (version.int() != FORMAT_VERSION) version.fail("is ${version.int()}; this app reads version $FORMAT_VERSION")
            val model = root["model"]
            val spec = parseSpec(root["spec"])
            val input = parseInput(root["input"], spec)
            val affineNode = root["affine_input"]
            val present = affineNode["present"].bool()
            val affine = AffineInputInfo(if (present) affineNode["name"].string() else affineNode.opt("name")?.string() ?: "crop_to_image", present)
            val outputs = parseOutputs(root["outputs"], spec, affine)
            return ModelMetadata(
                formatVersion = version.int(),
                variant = model["variant"].string(),
                weights = model.opt("weights")?.string() ?: "",
                spec = spec,
                input = input,
                affineInput = affine,
                outputs = outputs,
                format = root["format"].string(),
                precision = root["precision"].string(),
                backend = root["backend"].string(),
            )
        }

        private fun pairs(node: JsonNode, k: Int): List<IntArray> = node.list().map { p ->
            val ij = p.ints()
            if (ij.size != 2 || ij.any { it < 0 || it >= k }) node.fail("has pair ${ij.toList()} out of range for $k keypoints")
            ij
        }

        private fun parseSpec(node: JsonNode): PoseSpecInfo {
            val names = node["keypoint_names"].strings()
            val k = names.size
            if (k == 0) node["keypoint_names"].fail("is empty")
            node.opt("num_keypoints")?.let { if (it.int() != k) it.fail("is ${it.int()} but keypoint_names has $k") }
            val size = node["input_size"].ints()
            if (size.size != 2 || size.any { it <= 0 }) node["input_size"].fail("must be [width, height] > 0")
            val mean = node["mean"].doubles()
            val std = node["std"].doubles()
            if (mean.size != 3) node["mean"].fail("must have 3 values")
            if (std.size != 3 || std.any { it <= 0 }) node["std"].fail("must have 3 positive values")
            val ratio = node["simcc_split_ratio"].double()
            if (!(ratio > 0)) node["simcc_split_ratio"].fail("must be positive")
            val lengths = intArrayOf((size[0] * ratio).toInt(), (size[1] * ratio).toInt())
            node.opt("simcc_lengths")?.let {
                if (!it.ints().contentEquals(lengths)) it.fail("is ${it.ints().toList()}, expected ${lengths.toList()} from input_size x simcc_split_ratio")
            }
            val padding = node["bbox_padding"].double()
            if (!(padding > 0)) node["bbox_padding"].fail("must be positive")
            return PoseSpecInfo(
                name = node["name"].string(),
                keypointNames = names,
                skeleton = pairs(node["skeleton"], k),
                flipPairs = pairs(node["flip_pairs"], k),
                inputWidth = size[0],
                inputHeight = size[1],
                mean = mean,
                std = std,
                simccSplitRatio = ratio,
                simccLengths = lengths,
                bboxPadding = padding,
            )
        }

        private fun parseInput(node: JsonNode, spec: PoseSpecInfo): InputInfo {
            val dtypeNode = node["dtype"]
            val dtype = InputDType.values().firstOrNull { it.label == dtypeNode.string() }
                ?: dtypeNode.fail("is \"${dtypeNode.string()}\"; expected uint8 or float32")
            val layoutNode = node["layout"]
            val layout = Layout.values().firstOrNull { it.name == layoutNode.string() }
                ?: layoutNode.fail("is \"${layoutNode.string()}\"; expected NHWC or NCHW")
            val color = node["color"]
            if (color.string() != "RGB") color.fail("is \"${color.string()}\"; the app feeds RGB")
            val w = node["width"]
            val h = node["height"]
            if (w.int() != spec.inputWidth) w.fail("is ${w.int()} but spec.input_size is ${spec.inputWidth}x${spec.inputHeight}")
            if (h.int() != spec.inputHeight) h.fail("is ${h.int()} but spec.input_size is ${spec.inputWidth}x${spec.inputHeight}")
            val norm = node["normalization"]
            val external = when (norm.string()) {
                "in_graph" -> false
                "external" -> true
                else -> norm.fail("is \"${norm.string()}\"; expected in_graph or external")
            }
            if (external && dtype == InputDType.UINT8) norm.fail("is external but input.dtype is uint8: normalized values need float32")
            val type = node.opt("type")
            val isImage = when (type?.string() ?: "tensor") {
                "tensor" -> false
                "image" -> true
                else -> type!!.fail("is \"${type.string()}\"; expected tensor or image")
            }
            return InputInfo(node["name"].string(), dtype, layout, w.int(), h.int(), external, isImage)
        }

        private fun parseOutputs(node: JsonNode, spec: PoseSpecInfo, affine: AffineInputInfo): OutputsInfo {
            val k = spec.numKeypoints.toDouble()
            fun shape(n: JsonNode, expected: List<Double>) {
                val s = n["shape"].doubles().toList()
                if (s != expected) n["shape"].fail("is $s, expected $expected")
            }
            if (node.has("keypoints") && node.has("scores")) {
                val kp = node["keypoints"]
                shape(kp, listOf(1.0, k, 2.0))
                shape(node["scores"], listOf(1.0, k))
                val unitsNode = kp["units"]
                val units = KeypointUnits.values().firstOrNull { it.label == unitsNode.string() }
                    ?: unitsNode.fail("is \"${unitsNode.string()}\"; expected \"crop pixels\" or \"image pixels\"")
                if ((units == KeypointUnits.IMAGE_PIXELS) != affine.present) {
                    unitsNode.fail("is \"${units.label}\" but affine_input.present is ${affine.present}: image pixels come only with the crop_to_image input")
                }
                return OutputsInfo.Decoded(units)
            }
            if (node.has("simcc_x") && node.has("simcc_y")) {
                shape(node["simcc_x"], listOf(1.0, k, spec.simccLengths[0].toDouble()))
                shape(node["simcc_y"], listOf(1.0, k, spec.simccLengths[1].toDouble()))
                return OutputsInfo.Simcc(spec.simccLengths[0], spec.simccLengths[1])
            }
            node.fail("needs keypoints and scores, or simcc_x and simcc_y")
        }
    }
}
