package org.starpose.demo.ui

import android.content.Context
import androidx.appcompat.app.AlertDialog
import org.starpose.demo.ml.Runtime

/** The runtime choice, kept in SharedPreferences and changed from a single-choice dialog. */
class RuntimeSettings(context: Context) {
    private val prefs = context.getSharedPreferences("starpose", Context.MODE_PRIVATE)

    var runtime: Runtime
        get() = prefs.getString(KEY, null)?.let { name -> Runtime.values().firstOrNull { it.name == name } } ?: Runtime.EXECUTORCH
        set(value) = prefs.edit().putString(KEY, value.name).apply()

    fun showDialog(context: Context, onChosen: (Runtime) -> Unit) {
        val all = Runtime.values()
        AlertDialog.Builder(context)
            .setTitle("Runtime")
            .setSingleChoiceItems(all.map { it.label }.toTypedArray(), all.indexOf(runtime)) { dialog, which ->
                runtime = all[which]
                dialog.dismiss()
                onChosen(all[which])
            }
            .show()
    }

    private companion object {
        const val KEY = "runtime"
    }
}
