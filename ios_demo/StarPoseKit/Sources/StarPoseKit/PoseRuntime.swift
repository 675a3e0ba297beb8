#if canImport(CoreML)
import CoreML
import Foundation
import StarPoseCore

/// The runtimes a demo app offers; each builds its estimator from the model files in a bundle
/// (exported with `starpose-mobile export --format coreml|executorch` into ios_demo/App/Models).
public enum PoseRuntime: String, CaseIterable, Identifiable {
    case coreMLAll = "Core ML · all units"
    case coreMLNeuralEngine = "Core ML · CPU + Neural Engine"
    case coreMLCPU = "Core ML · CPU only"
    case execuTorch = "ExecuTorch (.pte)"

    public var id: String { rawValue }

    /// Runtimes compiled into this build (ExecuTorch only where its package is linked).
    public static var available: [PoseRuntime] {
        #if canImport(ExecuTorch)
        return allCases
        #else
        return allCases.filter { $0 != .execuTorch }
        #endif
    }

    public func makeEstimator(bundle: Bundle = .main) throws -> PoseEstimator {
        switch self {
        case .coreMLAll, .coreMLNeuralEngine, .coreMLCPU:
            let url = try Self.find("mlmodelc", in: bundle, format: "coreml")
            let units: MLComputeUnits = self == .coreMLAll ? .all : (self == .coreMLNeuralEngine ? .cpuAndNeuralEngine : .cpuOnly)
            // Xcode compiles name.mlpackage into name.mlmodelc; its sidecar keeps the package name.
            let stem = url.deletingPathExtension().lastPathComponent
            let sidecar = Self.sidecar(for: url, extra: ["\(stem).mlpackage.json"], in: bundle)
            return try CoreMLPoseEstimator(url: url, computeUnits: units, sidecar: sidecar)
        case .execuTorch:
            #if canImport(ExecuTorch)
            let url = try Self.find("pte", in: bundle, format: "executorch")
            return try ExecuTorchPoseEstimator(url: url, sidecar: Self.sidecar(for: url, extra: [], in: bundle))
            #else
            throw PoseError.invalidArgument("this build does not link ExecuTorch")
            #endif
        }
    }

    static func find(_ ext: String, in bundle: Bundle, format: String) throws -> URL {
        guard let url = bundle.urls(forResourcesWithExtension: ext, subdirectory: nil)?.sorted(by: { $0.lastPathComponent < $1.lastPathComponent }).first else {
            throw PoseError.invalidArgument("no .\(ext) model in the app bundle; run: starpose-mobile export --format \(format) --out ios_demo/App/Models")
        }
        return url
    }

    static func sidecar(for model: URL, extra: [String], in bundle: Bundle) -> URL? {
        let names = extra + ModelMetadata.sidecarCandidates(model.lastPathComponent)
        return names.lazy.compactMap { bundle.url(forResource: $0, withExtension: nil) }.first
    }
}
#endif
