import Foundation
import StarPoseCore
#if canImport(CoreML) && canImport(CoreVideo)
import CoreML
import CoreVideo
#endif
#if canImport(ExecuTorch)
import ExecuTorch
#endif

/// The exported person detector (`person_detector_*`, docs/EXPORT.md) in one runtime: the
/// letterboxed uint8 RGB frame in, `boxes (1, N, 4)` and `scores (1, N)` out. NMS and the way
/// back to image pixels are StarPoseCore's `PersonDetectorStep`. Not thread-safe.
public protocol PersonDetector: AnyObject {
    var metadata: DetectorMetadata { get }
    func run(_ pixels: [UInt8]) throws -> (boxes: [Float], scores: [Float])
}

/// Boxes first, scores second, told apart by their sizes (4 values per anchor vs 1).
func splitDetectorOutputs(_ a: [Float], _ b: [Float], anchors: Int) throws -> (boxes: [Float], scores: [Float]) {
    if a.count == 4 * anchors, b.count == anchors { return (a, b) }
    if b.count == 4 * anchors, a.count == anchors { return (b, a) }
    throw MetadataError("detector outputs of \(a.count) and \(b.count) values; metadata promises \(anchors) anchors")
}

#if canImport(CoreML) && canImport(CoreVideo)
/// Core ML runtime for `person_detector_<p>.mlpackage` (image input, RGB, at the size its metadata gives: 160x224 (w x h) by default).
public final class CoreMLPersonDetector: PersonDetector {
    public let metadata: DetectorMetadata
    private let model: MLModel
    private var inputBuffer: CVPixelBuffer?

    public init(url: URL, sidecar: URL, computeUnits: MLComputeUnits = .all) throws {
        let compiled = try url.pathExtension == "mlmodelc" ? url : MLModel.compileModel(at: url)
        let configuration = MLModelConfiguration()
        configuration.computeUnits = computeUnits
        model = try MLModel(contentsOf: compiled, configuration: configuration)
        metadata = try DetectorMetadata.parse(String(decoding: try Data(contentsOf: sidecar), as: UTF8.self), source: sidecar.lastPathComponent)
    }

    public func run(_ pixels: [UInt8]) throws -> (boxes: [Float], scores: [Float]) {
        let w = metadata.spec.inputWidth
        let h = metadata.spec.inputHeight
        let buffer = try inputBuffer ?? makeBGRABuffer(width: w, height: h)
        inputBuffer = buffer
        try fillBGRA(buffer, rgb: pixels, width: w, height: h)
        let prediction = try model.prediction(from: try MLDictionaryFeatureProvider(dictionary: ["image": MLFeatureValue(pixelBuffer: buffer)]))
        guard let boxes = prediction.featureValue(for: "boxes")?.multiArrayValue,
              let scores = prediction.featureValue(for: "scores")?.multiArrayValue else {
            throw MetadataError("the detector model has no 'boxes' and 'scores' outputs")
        }
        return try splitDetectorOutputs(floats(of: boxes), floats(of: scores), anchors: metadata.numAnchors)
    }
}
#endif

#if canImport(ExecuTorch)
/// ExecuTorch runtime for `person_detector_xnnpack_<p>.pte`.
public final class ExecuTorchPersonDetector: PersonDetector {
    public let metadata: DetectorMetadata
    private let module: Module

    public init(url: URL, sidecar: URL) throws {
        module = Module(filePath: url.path)
        try module.load("forward")
        metadata = try DetectorMetadata.parse(String(decoding: try Data(contentsOf: sidecar), as: UTF8.self), source: sidecar.lastPathComponent)
    }

    public func run(_ pixels: [UInt8]) throws -> (boxes: [Float], scores: [Float]) {
        let shape = [1, metadata.spec.inputHeight, metadata.spec.inputWidth, 3]
        let outputs: [Value] = try module.forward([Tensor<UInt8>(pixels, shape: shape)])
        var data: [[Float]] = []
        for value in outputs {
            guard let tensor: Tensor<Float> = value.tensor() else { continue }
            data.append(try tensor.scalars())
        }
        guard data.count == 2 else { throw MetadataError("the detector program returned \(data.count) float outputs, expected 2") }
        return try splitDetectorOutputs(data[0], data[1], anchors: metadata.numAnchors)
    }
}
#endif
