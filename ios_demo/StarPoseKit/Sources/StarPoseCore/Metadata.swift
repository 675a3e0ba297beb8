import Foundation

// The metadata JSON every exporter writes beside (or into) an artifact, parsed and validated the
// same way as android_demo/core's Metadata.kt: the one place the app learns input size, layout,
// keypoint names, skeleton and output form, instead of re-typing them.

public enum InputDType: String { case uint8, float32 }

public enum KeypointUnits: String {
    case cropPixels = "crop pixels"
    case imagePixels = "image pixels"
}

/// The model contract (`PoseSpec.to_dict()`), the fields the app needs.
public struct PoseSpecInfo {
    public let name: String
    public let keypointNames: [String]
    public let skeleton: [[Int]]
    public let flipPairs: [[Int]]
    public let inputWidth: Int
    public let inputHeight: Int
    public let mean: [Double]
    public let std: [Double]
    public let simccSplitRatio: Double
    public let simccLengths: [Int]
    public let bboxPadding: Double

    public var numKeypoints: Int { keypointNames.count }
}

public struct InputInfo {
    public let name: String
    public let dtype: InputDType
    public let layout: Layout
    public let width: Int
    public let height: Int
    /// True when the app must apply `(x - mean) / std` itself (`normalization: external`).
    public let normalizeInApp: Bool
    /// True for a Core ML image input (`type: image`): feed a pixel buffer, not a tensor.
    public let isImage: Bool

    /// The tensor shape the model takes.
    public var shape: [Int] { layout == .nchw ? [1, 3, height, width] : [1, height, width, 3] }
}

public struct AffineInputInfo {
    public let name: String
    public let present: Bool
}

/// What the graph returns: decoded keypoints and scores, or the raw SimCC vectors.
public enum OutputsInfo {
    case decoded(units: KeypointUnits)
    case simcc(lengthX: Int, lengthY: Int)
}

/// A model file picked for this platform, with its sidecar (name and parsed metadata) if any.
public struct ArtifactChoice {
    public let model: String
    public let sidecar: String?
    public let metadata: ModelMetadata?
}

public struct ModelMetadata {
    public static let formatVersion = 1

    public let formatVersion: Int
    public let variant: String
    public let weights: String
    public let spec: PoseSpecInfo
    public let input: InputInfo
    public let affineInput: AffineInputInfo
    public let outputs: OutputsInfo
    public let format: String
    public let precision: String
    public let backend: String

    /// Sidecar names tried for a model file `name.ext`, in order: the exporters write
    /// `name.ext.json`; the others are for hand-made artifacts.
    public static func sidecarCandidates(_ modelFileName: String) -> [String] {
        let stem = (modelFileName as NSString).deletingPathExtension
        return ["\(modelFileName).json", "\(stem).json", "\(stem).metadata.json", "metadata.json"]
    }

    /// Choose the model file among `names` (a folder listing) for this platform: the first
    /// `*.extension` in name order whose backend (from its sidecar, else its `_backend_` name
    /// part) is not in `excludedBackends`. `read` returns a file's text; the chosen sidecar is
    /// parsed (and so validated) here. Same rule as the Kotlin core.
    public static func pickArtifact(_ names: [String], extension ext: String, excludedBackends: Set<String>,
                                    read: (String) throws -> String) throws -> ArtifactChoice? {
        // the person detector exported next to the pose model has its own metadata (DetectorMetadata)
        for model in names.filter({ $0.hasSuffix(".\(ext)") && !$0.hasPrefix(detectorPrefix) }).sorted() {
            let sidecar = sidecarCandidates(model).first { names.contains($0) }
            var metadata: ModelMetadata?
            if let sidecar { metadata = try parse(try read(sidecar), source: sidecar) }
            let excluded: Bool
            if let metadata {
                excluded = excludedBackends.contains(metadata.backend)
            } else {
                excluded = excludedBackends.contains { model.contains("_\($0)_") }
            }
            if !excluded { return ArtifactChoice(model: model, sidecar: sidecar, metadata: metadata) }
        }
        return nil
    }

    public static func fromFile(_ url: URL) throws -> ModelMetadata {
        guard let data = FileManager.default.contents(atPath: url.path) else {
            throw MetadataError("\(url.path): metadata file not found")
        }
        return try parse(String(decoding: data, as: UTF8.self), source: url.path)
    }

    /// Parse and validate; every problem throws `MetadataError` naming `source` and the field.
    public static func parse(_ text: String, source: String) throws -> ModelMetadata {
        let root: JSONNode
        do {
            root = try JSONNode.parse(text, source: source)
        } catch let e as JSONError {
            throw MetadataError(e.message)
        }
        guard case .object = root.value else { throw root.fail("must be a JSON object (the artifact metadata)") }
        return try fromJSON(root)
    }

    public static func fromJSON(_ root: JSONNode) throws -> ModelMetadata {
        let versionNode = try root["format_version"]
        let version = try versionNode.int()
        if version != formatVersion { throw versionNode.fail("is \(version); this app reads version \(formatVersion)") }
        let model = try root["model"]
        let spec = try parseSpec(try root["spec"])
        let input = try parseInput(try root["input"], spec: spec)
        let affineNode = try root["affine_input"]
        let present = try affineNode["present"].bool()
        let affineName = try present ? affineNode["name"].string() : (affineNode.opt("name")?.string() ?? "crop_to_image")
        let affine = AffineInputInfo(name: affineName, present: present)
        let outputs = try parseOutputs(try root["outputs"], spec: spec, affine: affine)
        return ModelMetadata(
            formatVersion: version,
            variant: try model["variant"].string(),
            weights: try model.opt("weights")?.string() ?? "",
            spec: spec,
            input: input,
            affineInput: affine,
            outputs: outputs,
            format: try root["format"].string(),
            precision: try root["precision"].string(),
            backend: try root["backend"].string()
        )
    }

    private static func pairs(_ node: JSONNode, _ k: Int) throws -> [[Int]] {
        try node.list().map { p in
            let ij = try p.ints()
            if ij.count != 2 || ij.contains(where: { $0 < 0 || $0 >= k }) {
                throw node.fail("has pair \(ij) out of range for \(k) keypoints")
            }
            return ij
        }
    }

    private static func parseSpec(_ node: JSONNode) throws -> PoseSpecInfo {
        let names = try node["keypoint_names"].strings()
        let k = names.count
        if k == 0 { throw try node["keypoint_names"].fail("is empty") }
        if let countNode = try node.opt("num_keypoints") {
            let n = try countNode.int()
            if n != k { throw countNode.fail("is \(n) but keypoint_names has \(k)") }
        }
        let size = try node["input_size"].ints()
        if size.count != 2 || size.contains(where: { $0 <= 0 }) { throw try node["input_size"].fail("must be [width, height] > 0") }
        let mean = try node["mean"].doubles()
        let std = try node["std"].doubles()
        if mean.count != 3 { throw try node["mean"].fail("must have 3 values") }
        if std.count != 3 || std.contains(where: { $0 <= 0 }) { throw try node["std"].fail("must have 3 positive values") }
        let ratio = try node["simcc_split_ratio"].double()
        if !(ratio > 0) { throw try node["simcc_split_ratio"].fail("must be positive") }
        let lengths = [Int(Double(size[0]) * ratio), Int(Double(size[1]) * ratio)]
        if let givenNode = try node.opt("simcc_lengths") {
            let given = try givenNode.ints()
            if given != lengths { throw givenNode.fail("is \(given), expected \(lengths) from input_size x simcc_split_ratio") }
        }
        let padding = try node["bbox_padding"].double()
        if !(padding > 0) { throw try node["bbox_padding"].fail("must be positive") }
        return PoseSpecInfo(
            name: try node["name"].string(),
            keypointNames: names,
            skeleton: try pairs(try node["skeleton"], k),
            flipPairs: try pairs(try node["flip_pairs"], k),
            inputWidth: size[0],
            inputHeight: size[1],
            mean: mean,
            std: std,
            simccSplitRatio: ratio,
            simccLengths: lengths,
            bboxPadding: padding
        )
    }

    private static func parseInput(_ node: JSONNode, spec: PoseSpecInfo) throws -> InputInfo {
        let dtypeNode = try node["dtype"]
        let dtypeText = try dtypeNode.string()
        guard let dtype = InputDType(rawValue: dtypeText) else { throw dtypeNode.fail("is \"\(dtypeText)\"; expected uint8 or float32") }
        let layoutNode = try node["layout"]
        let layoutText = try layoutNode.string()
        guard let layout = Layout(rawValue: layoutText) else { throw layoutNode.fail("is \"\(layoutText)\"; expected NHWC or NCHW") }
        let colorNode = try node["color"]
        let color = try colorNode.string()
        if color != "RGB" { throw colorNode.fail("is \"\(color)\"; the app feeds RGB") }
        let wNode = try node["width"]
        let hNode = try node["height"]
        let w = try wNode.int()
        let h = try hNode.int()
        if w != spec.inputWidth { throw wNode.fail("is \(w) but spec.input_size is \(spec.inputWidth)x\(spec.inputHeight)") }
        if h != spec.inputHeight { throw hNode.fail("is \(h) but spec.input_size is \(spec.inputWidth)x\(spec.inputHeight)") }
        let normNode = try node["normalization"]
        let external: Bool
        switch try normNode.string() {
        case "in_graph": external = false
        case "external": external = true
        case let other: throw normNode.fail("is \"\(other)\"; expected in_graph or external")
        }
        if external && dtype == .uint8 { throw normNode.fail("is external but input.dtype is uint8: normalized values need float32") }
        var isImage = false
        if let typeNode = try node.opt("type") {
            switch try typeNode.string() {
            case "tensor": isImage = false
            case "image": isImage = true
            case let other: throw typeNode.fail("is \"\(other)\"; expected tensor or image")
            }
        }
        return InputInfo(name: try node["name"].string(), dtype: dtype, layout: layout, width: w, height: h,
                         normalizeInApp: external, isImage: isImage)
    }

    private static func parseOutputs(_ node: JSONNode, spec: PoseSpecInfo, affine: AffineInputInfo) throws -> OutputsInfo {
        let k = Double(spec.numKeypoints)
        func checkShape(_ n: JSONNode, _ expected: [Double]) throws {
            let s = try n["shape"].doubles()
            if s != expected { throw try n["shape"].fail("is \(s), expected \(expected)") }
        }
        if try node.has("keypoints"), try node.has("scores") {
            let kp = try node["keypoints"]
            try checkShape(kp, [1, k, 2])
            try checkShape(try node["scores"], [1, k])
            let unitsNode = try kp["units"]
            let unitsText = try unitsNode.string()
            guard let units = KeypointUnits(rawValue: unitsText) else {
                throw unitsNode.fail("is \"\(unitsText)\"; expected \"crop pixels\" or \"image pixels\"")
            }
            if (units == .imagePixels) != affine.present {
                throw unitsNode.fail("is \"\(units.rawValue)\" but affine_input.present is \(affine.present): image pixels come only with the crop_to_image input")
            }
            return .decoded(units: units)
        }
        if try node.has("simcc_x"), try node.has("simcc_y") {
            try checkShape(try node["simcc_x"], [1, k, Double(spec.simccLengths[0])])
            try checkShape(try node["simcc_y"], [1, k, Double(spec.simccLengths[1])])
            return .simcc(lengthX: spec.simccLengths[0], lengthY: spec.simccLengths[1])
        }
        throw node.fail("needs keypoints and scores, or simcc_x and simcc_y")
    }
}
