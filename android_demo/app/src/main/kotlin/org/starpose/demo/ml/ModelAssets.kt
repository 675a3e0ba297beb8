package org.starpose.demo.ml

import android.content.Context
import org.starpose.core.MetadataException
import org.starpose.core.ModelMetadata
import java.io.File
import java.io.FileNotFoundException

/** A model file copied out of the APK assets, with its metadata sidecar text (if any). */
class ModelAsset(val file: File, val sidecarText: String?, val sidecarName: String?)

/**
 * Finds the exported model for a runtime in `app/src/main/assets` (see the README there).
 * ExecuTorch's `Module.load` needs a file path, so the model is copied into the app's files
 * folder once per APK install (size-checked).
 */
object ModelAssets {
    const val EXPORT_HINT = "starpose-mobile export --format %s --out android_demo/app/src/main/assets"

    /** The first `*.extension` asset whose backend runs on Android (see ModelMetadata.pickArtifact). */
    fun find(context: Context, extension: String, format: String): ModelAsset {
        val names = context.assets.list("")?.toList().orEmpty()
        val read = { name: String -> context.assets.open(name).use { it.readBytes().toString(Charsets.UTF_8) } }
        val choice = ModelMetadata.pickArtifact(names, extension, ANDROID_EXCLUDED_BACKENDS, read)
            ?: throw FileNotFoundException(
                "no .$extension model for Android in the app's assets (Core ML-delegated programs run only on Apple devices); " +
                    "run: ${EXPORT_HINT.format(format)}",
            )
        return ModelAsset(copyOut(context, choice.model), choice.sidecar?.let(read), choice.sidecar)
    }

    /** ExecuTorch programs delegated to these backends cannot run on Android. */
    private val ANDROID_EXCLUDED_BACKENDS = setOf("coreml", "mps")

    /** Parse the sidecar, or the metadata embedded in the model when [embedded] can read it. */
    fun metadata(asset: ModelAsset, embedded: (() -> String?)? = null): ModelMetadata {
        asset.sidecarText?.let { return ModelMetadata.parse(it, "assets/${asset.sidecarName}") }
        val text = embedded?.invoke()
            ?: throw MetadataException("assets/${asset.file.name}: no metadata sidecar (${ModelMetadata.sidecarCandidates(asset.file.name).first()}) and none embedded")
        return ModelMetadata.parse(text, "${asset.file.name} (embedded metadata)")
    }

    /** Copy asset [name] out to a file path (the runtimes load files), once per install. */
    fun copy(context: Context, name: String): File = copyOut(context, name)

    private fun copyOut(context: Context, name: String): File {
        val dest = File(context.filesDir, "models/$name")
        val length = context.assets.openFd(name).use { it.length }
        if (dest.isFile && dest.length() == length) return dest
        dest.parentFile?.mkdirs()
        val tmp = File(dest.parentFile, ".$name.tmp")
        context.assets.open(name).use { input -> tmp.outputStream().use { input.copyTo(it) } }
        if (!tmp.renameTo(dest)) throw java.io.IOException("cannot move ${tmp.path} to ${dest.path}")
        return dest
    }
}
