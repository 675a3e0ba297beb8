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
            // Xcode compiles name.mlpackage into name.mlmodelc; its sidecar keeps the package name.
            let (url, sidecar) = try Self.find("mlmodelc", in: bundle, format: "coreml") { "\($0).mlpackage.json" }
            let units: MLComputeUnits = self == .coreMLAll ? .all : (self == .coreMLNeuralEngine ? .cpuAndNeuralEngine : .cpuOnly)
            return try CoreMLPoseEstimator(url: url, computeUnits: units, sidecar: sidecar)
        case .execuTorch:
            #if canImport(ExecuTorch)
            let (url, sidecar) = try Self.find("pte", in: bundle, format: "executorch") { _ in nil }
            return try ExecuTorchPoseEstimator(url: url, sidecar: sidecar)
            #else
            throw PoseError.invalidArgument("this build does not link ExecuTorch")
            #endif
        }
    }

    /// The person detector exported next to the pose model (`person_detector_*` with its sidecar)
    /// for this runtime, or nil when the bundle has none: the session then follows one person.
    public func makeDetector(bundle: Bundle = .main) throws -> PersonDetector? {
        guard let root = bundle.resourceURL, let names = try? FileManager.default.contentsOfDirectory(atPath: root.path) else { return nil }
        // Xcode compiles name.mlpackage into name.mlmodelc; the sidecar keeps the package name.
        let listed = names.map { $0.hasSuffix(".mlmodelc") ? ($0 as NSString).deletingPathExtension + ".mlpackage" : $0 }
        let read = { (name: String) throws -> String in String(decoding: try Data(contentsOf: root.appendingPathComponent(name)), as: UTF8.self) }
        switch self {
        case .coreMLAll, .coreMLNeuralEngine, .coreMLCPU:
            guard let found = try pickDetectorArtifact(listed, extension: "mlpackage", read: read) else { return nil }
            let model = found.0
            let compiled = (model as NSString).deletingPathExtension + ".mlmodelc"
            let url = root.appendingPathComponent(names.contains(compiled) ? compiled : model)
            return try CoreMLPersonDetector(url: url, sidecar: root.appendingPathComponent("\(model).json"))
        case .execuTorch:
            #if canImport(ExecuTorch)
            guard let found = try pickDetectorArtifact(names, extension: "pte", read: read) else { return nil }
            let model = found.0
            return try ExecuTorchPersonDetector(url: root.appendingPathComponent(model), sidecar: root.appendingPathComponent("\(model).json"))
            #else
            return nil
            #endif
        }
    }

    /// The bundled model file with that extension and its metadata sidecar (if any), chosen by
    /// StarPoseCore's `pickArtifact` (every backend runs on Apple devices).
    static func find(_ ext: String, in bundle: Bundle, format: String, extraSidecar: (String) -> String?) throws -> (URL, URL?) {
        guard let root = bundle.resourceURL,
              let names = try? FileManager.default.contentsOfDirectory(atPath: root.path),
              let choice = try ModelMetadata.pickArtifact(names, extension: ext, excludedBackends: [], read: { name in
                  String(decoding: try Data(contentsOf: root.appendingPathComponent(name)), as: UTF8.self)
              }) else {
            throw PoseError.invalidArgument("no .\(ext) model in the app bundle; run: starpose-mobile export --format \(format) --out ios_demo/App/Models")
        }
        let stem = (choice.model as NSString).deletingPathExtension
        let sidecarName = choice.sidecar ?? extraSidecar(stem).flatMap { names.contains($0) ? $0 : nil }
        return (root.appendingPathComponent(choice.model), sidecarName.map { root.appendingPathComponent($0) })
    }
}
#endif
