package org.starpose.demo

import android.Manifest
import android.content.pm.PackageManager
import android.os.Bundle
import androidx.activity.result.contract.ActivityResultContracts
import androidx.appcompat.app.AppCompatActivity
import androidx.camera.view.PreviewView
import androidx.core.content.ContextCompat
import org.starpose.demo.camera.CameraController
import org.starpose.demo.ml.PersonDetector
import org.starpose.demo.ml.PoseAnalyzer
import org.starpose.demo.ml.Runtime
import org.starpose.demo.ui.OverlayView
import org.starpose.demo.ui.RuntimeSettings
import java.util.concurrent.ExecutorService
import java.util.concurrent.Executors

/** Wires camera → analyzer → overlay and the runtime setting; the work lives in camera/, ml/, ui/. */
class MainActivity : AppCompatActivity() {
    private lateinit var overlay: OverlayView
    private lateinit var settings: RuntimeSettings
    private val analysisExecutor: ExecutorService = Executors.newSingleThreadExecutor()
    private val analyzer = PoseAnalyzer(
        onResult = { frame -> runOnUiThread { overlay.show(frame) } },
        onError = { e -> runOnUiThread { overlay.showMessage(e.message ?: e.toString()) } },
    )

    private val cameraPermission = registerForActivityResult(ActivityResultContracts.RequestPermission()) { granted ->
        if (granted) startCamera() else overlay.showMessage(getString(R.string.camera_denied))
    }

    override fun onCreate(savedInstanceState: Bundle?) {
        super.onCreate(savedInstanceState)
        setContentView(R.layout.activity_main)
        overlay = findViewById(R.id.overlay)
        settings = RuntimeSettings(this)
        findViewById<android.view.View>(R.id.settings).setOnClickListener { settings.showDialog(this, ::loadRuntime) }
        loadRuntime(settings.runtime)
        if (ContextCompat.checkSelfPermission(this, Manifest.permission.CAMERA) == PackageManager.PERMISSION_GRANTED) {
            startCamera()
        } else {
            cameraPermission.launch(Manifest.permission.CAMERA)
        }
    }

    private fun startCamera() {
        CameraController(this, this).start(findViewById<PreviewView>(R.id.preview), analysisExecutor, analyzer)
    }

    /** Build the runtime off the UI thread, then hand it to the analyzer on its own thread. */
    private fun loadRuntime(runtime: Runtime) {
        overlay.showMessage(getString(R.string.loading_model, runtime.label))
        analysisExecutor.execute {
            analyzer.setEstimator(null)
            try {
                // the person detector exported next to the pose model, when there is one: everyone in view
                analyzer.setEstimator(runtime.create(applicationContext), PersonDetector.create(applicationContext, runtime))
            } catch (e: Exception) {
                runOnUiThread { overlay.showMessage("${runtime.label}: ${e.message}") }
            }
        }
    }

    override fun onDestroy() {
        analysisExecutor.execute { analyzer.setEstimator(null) }
        analysisExecutor.shutdown()
        super.onDestroy()
    }
}
