#if canImport(ExecuTorch)
import ExecuTorch
import Foundation
import StarPoseCore

/// ExecuTorch runtime (the `executorch` Swift package) for the `.pte` bundle: uint8 RGB crop (and
/// the crop → image matrix when the bundle takes one) in, keypoints and scores out. Backends
/// (XNNPACK, Core ML) were chosen at export time; their packages must be linked (-all_load).
public final class ExecuTorchPoseEstimator: PoseEstimator {
    /// The exporter embeds the metadata as a constant method of the program.
    public static let metadataMethod = "metadata"

    public let name: String
    public let metadata: ModelMetadata
    private let module: Module

    public init(url: URL, sidecar: URL? = nil) throws {
        module = Module(filePath: url.path)
        try module.load("forward")
        if let sidecar, FileManager.default.fileExists(atPath: sidecar.path) {
            metadata = try ModelMetadata.fromFile(sidecar)
        } else {
            let values: [Value] = try module.execute(Self.metadataMethod, [])
            guard let text = values.first?.string else {
                throw MetadataError("\(url.lastPathComponent): no metadata sidecar and no '\(Self.metadataMethod)' method")
            }
            metadata = try ModelMetadata.parse(text, source: "\(url.lastPathComponent) (embedded metadata)")
        }
        name = "ExecuTorch · \(metadata.backend) · \(metadata.precision)"
    }

    public func run(_ input: PreparedInput) throws -> ModelOutput {
        var inputs: [ValueConvertible] = []
        if let pixels = input.pixels {
            inputs.append(Tensor<UInt8>(pixels, shape: input.shape))
        } else if let floats = input.floats {
            inputs.append(Tensor<Float>(floats, shape: input.shape))
        }
        if metadata.affineInput.present {
            inputs.append(Tensor<Float>(input.affineInput, shape: [1, 2, 3]))
        }
        let outputs: [Value] = try module.forward(inputs)
        var shapes: [[Int]] = []
        var data: [[Float]] = []
        for value in outputs {
            guard let tensor: Tensor<Float> = value.tensor() else { continue }
            shapes.append(tensor.shape)
            data.append(try tensor.scalars())
        }
        return try ModelOutput.fromTensors(shapes: shapes, data: data, metadata: metadata)
    }
}
#endif
