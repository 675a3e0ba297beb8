import AVFoundation
import StarPoseKit
import SwiftUI

/// AVFoundation capture (back camera, 640x480 BGRA, rotated upright for portrait) feeding a
/// `PoseSession` on one serial queue; publishes each `PoseFrame` on the main actor.
final class CameraModel: NSObject, ObservableObject, AVCaptureVideoDataOutputSampleBufferDelegate {
    let session = AVCaptureSession()
    @Published var frame: PoseFrame?
    @Published var message: String?

    private let queue = DispatchQueue(label: "org.starpose.pose")
    private var poseSession: PoseSession?

    /// Build the runtime on the pose queue, so that the previous one is never dropped mid-frame.
    func select(_ runtime: PoseRuntime) {
        message = "Loading \(runtime.rawValue)…"
        queue.async {
            do {
                // the person detector exported next to the pose model, when bundled: everyone in view
                self.poseSession = PoseSession(estimator: try runtime.makeEstimator(), detector: try runtime.makeDetector())
                DispatchQueue.main.async { self.message = nil }
            } catch {
                self.poseSession = nil
                DispatchQueue.main.async { self.message = "\(runtime.rawValue): \(error)" }
            }
        }
    }

    func start() async {
        guard await AVCaptureDevice.requestAccess(for: .video) else {
            await MainActor.run { self.message = "StarPose needs the camera to estimate poses." }
            return
        }
        queue.async { self.configureAndRun() }
    }

    private func configureAndRun() {
        session.beginConfiguration()
        session.sessionPreset = .vga640x480
        guard let device = AVCaptureDevice.default(.builtInWideAngleCamera, for: .video, position: .back),
              let input = try? AVCaptureDeviceInput(device: device), session.canAddInput(input) else {
            session.commitConfiguration()
            DispatchQueue.main.async { self.message = "No back camera available." }
            return
        }
        session.addInput(input)
        let output = AVCaptureVideoDataOutput()
        output.videoSettings = [kCVPixelBufferPixelFormatTypeKey as String: kCVPixelFormatType_32BGRA]
        output.alwaysDiscardsLateVideoFrames = true
        output.setSampleBufferDelegate(self, queue: queue)
        if session.canAddOutput(output) { session.addOutput(output) }
        if let connection = output.connection(with: .video), connection.isVideoRotationAngleSupported(90) {
            connection.videoRotationAngle = 90  // portrait: frames arrive upright (480x640)
        }
        session.commitConfiguration()
        session.startRunning()
    }

    func captureOutput(_ output: AVCaptureOutput, didOutput sampleBuffer: CMSampleBuffer, from connection: AVCaptureConnection) {
        guard let pixelBuffer = CMSampleBufferGetImageBuffer(sampleBuffer), let pose = poseSession else { return }
        let time = CMSampleBufferGetPresentationTimeStamp(sampleBuffer).seconds
        do {
            let result = try pose.process(pixelBuffer, timestamp: time)
            DispatchQueue.main.async { self.frame = result }
        } catch {
            DispatchQueue.main.async { self.message = "\(error)" }
        }
    }
}
