import SwiftUI

@main
struct StarPoseDemoApp: App {
    var body: some Scene {
        WindowGroup {
            ContentView()
        }
    }
}
