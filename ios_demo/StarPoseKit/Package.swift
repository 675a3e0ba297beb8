// swift-tools-version:5.9
// StarPoseKit: the iOS side of StarPose Mobile.
//   StarPoseCore — pure Swift (Foundation only): metadata, crop geometry, SimCC decoding, One Euro
//                  smoothing, ROI tracking, skeleton lists; the same logic as android_demo/core,
//                  tested with XCTest over the shared golden fixture in tests/golden.
//   StarPoseKit  — the PoseEstimator protocol with Core ML and ExecuTorch implementations and a
//                  PoseSession that runs camera frames through StarPoseCore's pipeline.
// `swift test` runs the golden tests. Set STARPOSE_NO_EXECUTORCH=1 to resolve and build without
// the ExecuTorch binaries (StarPoseKit then offers Core ML only).
import Foundation
import PackageDescription

let withExecuTorch = ProcessInfo.processInfo.environment["STARPOSE_NO_EXECUTORCH"] == nil

// Keep the branch equal to the executorch Python package that wrote the .pte (pyproject.toml,
// extra "export"): an older runtime may refuse a newer program.
let execuTorchBranch = "swiftpm-1.5.1"

var kitDependencies: [Target.Dependency] = ["StarPoseCore"]
var packageDependencies: [Package.Dependency] = []
if withExecuTorch {
    packageDependencies.append(.package(url: "https://github.com/pytorch/executorch.git", branch: execuTorchBranch))
    kitDependencies += [
        .product(name: "executorch", package: "executorch"),
        .product(name: "backend_xnnpack", package: "executorch"),
        .product(name: "backend_coreml", package: "executorch"),
        .product(name: "kernels_optimized", package: "executorch"),
    ]
}

let package = Package(
    name: "StarPoseKit",
    platforms: [.iOS(.v17), .macOS(.v14)],
    products: [
        .library(name: "StarPoseCore", targets: ["StarPoseCore"]),
        .library(name: "StarPoseKit", targets: ["StarPoseKit"]),
    ],
    dependencies: packageDependencies,
    targets: [
        .target(name: "StarPoseCore"),
        .target(name: "StarPoseKit", dependencies: kitDependencies),
        .testTarget(name: "StarPoseCoreTests", dependencies: ["StarPoseCore"]),
    ]
)
