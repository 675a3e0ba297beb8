import StarPoseKit
import SwiftUI

/// Smoothed skeleton(s) over the aspect-filled preview: bones and joints coloured by side, each
/// joint's score, and the runtime, FPS and latency.
struct PoseOverlay: View {
    let frame: PoseFrame?
    let message: String?

    private func color(_ side: Side) -> Color {
        switch side {
        case .left: return Color(red: 0, green: 0.78, blue: 0.47)
        case .right: return Color(red: 1, green: 0.55, blue: 0)
        case .center: return Color(red: 0.31, green: 0.63, blue: 1)
        }
    }

    var body: some View {
        ZStack(alignment: .topLeading) {
            if let frame {
                Canvas { context, size in
                    let toView = Affine.fillCenter(imageWidth: Double(frame.imageWidth), imageHeight: Double(frame.imageHeight),
                                                   viewWidth: size.width, viewHeight: size.height)
                    var skeletons: [([Double], [Float], DrawList)] = frame.people.map { ($0.0.smoothed, $0.0.scores, $0.1) }
                    if let pose = frame.pose, let drawList = frame.drawList { skeletons.append((pose.smoothed, pose.scores, drawList)) }
                    for (smoothed, scores, drawList) in skeletons {
                        let xy = toView.apply(smoothed)
                        func point(_ i: Int) -> CGPoint { CGPoint(x: xy[2 * i], y: xy[2 * i + 1]) }
                        for line in drawList.lines {
                            var path = Path()
                            path.move(to: point(line.a))
                            path.addLine(to: point(line.b))
                            context.stroke(path, with: .color(color(line.side)), style: StrokeStyle(lineWidth: 4, lineCap: .round))
                        }
                        for p in drawList.points {
                            let c = point(p.index)
                            context.fill(Path(ellipseIn: CGRect(x: c.x - 5, y: c.y - 5, width: 10, height: 10)), with: .color(color(p.side)))
                            context.draw(Text(String(format: "%.2f", scores[p.index])).font(.caption2).foregroundColor(.white),
                                         at: CGPoint(x: c.x + 18, y: c.y - 8))
                        }
                    }
                }
                VStack(alignment: .leading, spacing: 4) {
                    Text(frame.runtime)
                    Text(String(format: "%.1f FPS   model %.1f ms   frame %.1f ms", frame.fps, frame.modelMs, frame.frameMs))
                    Text(frame.pose.map { $0.lost ? "searching (full frame)" : "tracking" } ?? "\(frame.people.count) people")
                }
                .font(.system(.footnote, design: .monospaced))
                .foregroundColor(.white)
                .shadow(radius: 2)
                .padding(.top, 60)
                .padding(.leading, 16)
            }
            if let message {
                Text(message)
                    .foregroundColor(.white)
                    .padding()
                    .background(Color.black.opacity(0.6), in: RoundedRectangle(cornerRadius: 8))
                    .padding(.top, 140)
                    .padding(.horizontal, 16)
            }
        }
        .allowsHitTesting(false)
    }
}
