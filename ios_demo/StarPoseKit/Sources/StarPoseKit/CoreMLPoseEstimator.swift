#if canImport(CoreML) && canImport(CoreVideo)
import CoreML
import CoreVideo
import Foundation
import StarPoseCore

/// Core ML runtime for the `.mlpackage` bundle. The exporter gives it an image input (`ct.ImageType`,
/// RGB, scale 1): the affine crop is handed over as a BGRA `CVPixelBuffer` and Core ML converts it;
/// a tensor input gets an `MLMultiArray`. Metadata comes from `user_defined_metadata`.
public final class CoreMLPoseEstimator: PoseEstimator {
    /// The key under which the exporter stores the metadata JSON (mobile_export/coreml.py).
    public static let metadataKey = "starpose.metadata"

    public let name: String
    public let metadata: ModelMetadata
    private let model: MLModel
    private var inputBuffer: CVPixelBuffer?

    /// `url`: a compiled `.mlmodelc` (what Xcode puts into the app bundle) or an `.mlpackage`
    /// (compiled here first). `sidecar`: the exporter's JSON, used when the model carries none.
    public init(url: URL, computeUnits: MLComputeUnits = .all, sidecar: URL? = nil) throws {
        let compiled = try url.pathExtension == "mlmodelc" ? url : MLModel.compileModel(at: url)
        let configuration = MLModelConfiguration()
        configuration.computeUnits = computeUnits
        model = try MLModel(contentsOf: compiled, configuration: configuration)
        let creator = model.modelDescription.metadata[MLModelMetadataKey.creatorDefinedKey] as? [String: String]
        if let text = creator?[Self.metadataKey] {
            metadata = try ModelMetadata.parse(text, source: "\(url.lastPathComponent) (user_defined_metadata '\(Self.metadataKey)')")
        } else if let sidecar {
            metadata = try ModelMetadata.fromFile(sidecar)
        } else {
            throw MetadataError("\(url.lastPathComponent): no '\(Self.metadataKey)' in user_defined_metadata and no sidecar JSON")
        }
        name = "Core ML · \(Self.label(computeUnits)) · \(metadata.precision)"
    }

    static func label(_ units: MLComputeUnits) -> String {
        switch units {
        case .all: return "all units"
        case .cpuOnly: return "CPU"
        case .cpuAndGPU: return "CPU+GPU"
        case .cpuAndNeuralEngine: return "CPU+ANE"
        @unknown default: return "units \(units.rawValue)"
        }
    }

    public func run(_ input: PreparedInput) throws -> ModelOutput {
        let spec = metadata.input
        var features: [String: MLFeatureValue] = [:]
        if spec.isImage {
            guard let pixels = input.pixels else { throw PoseError.invalidArgument("a Core ML image input takes uint8 pixels") }
            let buffer = try inputBuffer ?? makeBGRABuffer(width: spec.width, height: spec.height)
            inputBuffer = buffer
            try fillBGRA(buffer, rgb: pixels, width: spec.width, height: spec.height)
            features[spec.name] = MLFeatureValue(pixelBuffer: buffer)
        } else {
            let values = input.floats ?? (input.pixels ?? []).map { Float($0) }
            features[spec.name] = MLFeatureValue(multiArray: try floatArray(values, shape: input.shape))
        }
        if metadata.affineInput.present {
            features[metadata.affineInput.name] = MLFeatureValue(multiArray: try floatArray(input.affineInput, shape: [1, 2, 3]))
        }
        let prediction = try model.prediction(from: try MLDictionaryFeatureProvider(dictionary: features))
        var shapes: [[Int]] = []
        var data: [[Float]] = []
        for name in prediction.featureNames.sorted() {
            guard let array = prediction.featureValue(for: name)?.multiArrayValue else { continue }
            shapes.append(array.shape.map { $0.intValue })
            data.append(floats(of: array))
        }
        return try ModelOutput.fromTensors(shapes: shapes, data: data, metadata: metadata)
    }
}

private func floatArray(_ values: [Float], shape: [Int]) throws -> MLMultiArray {
    let array = try MLMultiArray(shape: shape.map { NSNumber(value: $0) }, dataType: .float32)
    let pointer = array.dataPointer.bindMemory(to: Float.self, capacity: values.count)
    for (i, v) in values.enumerated() { pointer[i] = v }
    return array
}

/// An `MLMultiArray` as row-major floats, honouring its strides and element type.
func floats(of array: MLMultiArray) -> [Float] {
    let shape = array.shape.map { $0.intValue }
    let strides = array.strides.map { $0.intValue }
    let count = shape.reduce(1, *)
    var out = [Float](repeating: 0, count: count)
    var index = [Int](repeating: 0, count: shape.count)
    for linear in 0..<count {
        var rest = linear
        var offset = 0
        for d in stride(from: shape.count - 1, through: 0, by: -1) {
            index[d] = rest % shape[d]
            rest /= shape[d]
            offset += index[d] * strides[d]
        }
        switch array.dataType {
        case .float32:
            out[linear] = array.dataPointer.assumingMemoryBound(to: Float.self)[offset]
        case .double:
            out[linear] = Float(array.dataPointer.assumingMemoryBound(to: Double.self)[offset])
        case .int32:
            out[linear] = Float(array.dataPointer.assumingMemoryBound(to: Int32.self)[offset])
        default:
            out[linear] = array[index.map { NSNumber(value: $0) }].floatValue
        }
    }
    return out
}

func makeBGRABuffer(width: Int, height: Int) throws -> CVPixelBuffer {
    var buffer: CVPixelBuffer?
    let attributes = [kCVPixelBufferIOSurfacePropertiesKey as String: [String: Any]()] as CFDictionary
    let status = CVPixelBufferCreate(kCFAllocatorDefault, width, height, kCVPixelFormatType_32BGRA, attributes, &buffer)
    guard status == kCVReturnSuccess, let made = buffer else {
        throw PoseError.invalidArgument("CVPixelBufferCreate failed (\(status))")
    }
    return made
}

/// Interleaved RGB crop → BGRA pixel buffer (alpha 255).
func fillBGRA(_ buffer: CVPixelBuffer, rgb: [UInt8], width: Int, height: Int) throws {
    CVPixelBufferLockBaseAddress(buffer, [])
    defer { CVPixelBufferUnlockBaseAddress(buffer, []) }
    guard let base = CVPixelBufferGetBaseAddress(buffer)?.assumingMemoryBound(to: UInt8.self) else {
        throw PoseError.invalidArgument("pixel buffer has no base address")
    }
    let rowBytes = CVPixelBufferGetBytesPerRow(buffer)
    for y in 0..<height {
        for x in 0..<width {
            let s = (y * width + x) * 3
            let d = y * rowBytes + x * 4
            base[d] = rgb[s + 2]
            base[d + 1] = rgb[s + 1]
            base[d + 2] = rgb[s]
            base[d + 3] = 255
        }
    }
}
#endif
