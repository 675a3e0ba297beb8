import StarPoseKit
import SwiftUI

/// Camera preview, skeleton overlay, runtime picker. The work lives in CameraModel and StarPoseKit.
struct ContentView: View {
    @StateObject private var camera = CameraModel()
    @AppStorage("runtime") private var runtimeName = PoseRuntime.coreMLAll.rawValue

    var body: some View {
        ZStack(alignment: .bottomTrailing) {
            CameraPreview(session: camera.session)
            PoseOverlay(frame: camera.frame, message: camera.message)
            Menu {
                Picker("Runtime", selection: $runtimeName) {
                    ForEach(PoseRuntime.available) { runtime in
                        Text(runtime.rawValue).tag(runtime.rawValue)
                    }
                }
            } label: {
                Label("Runtime", systemImage: "cpu")
                    .padding(12)
                    .background(.ultraThinMaterial, in: Capsule())
            }
            .padding()
        }
        .ignoresSafeArea()
        .task {
            camera.select(PoseRuntime(rawValue: runtimeName) ?? .coreMLAll)
            await camera.start()
        }
        .onChange(of: runtimeName) { _, name in
            camera.select(PoseRuntime(rawValue: name) ?? .coreMLAll)
        }
    }
}
