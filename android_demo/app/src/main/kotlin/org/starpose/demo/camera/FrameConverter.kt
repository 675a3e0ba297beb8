package org.starpose.demo.camera

import androidx.camera.core.ImageProxy
import org.starpose.core.RgbImage

/**
 * ImageProxy (RGBA_8888, already rotated upright by CameraX) → the core's [RgbImage] view of the
 * same bytes: one copy into a reused array, then the core reads it through pixel/row strides.
 */
class FrameConverter {
    private var bytes = ByteArray(0)

    fun convert(image: ImageProxy): RgbImage {
        val plane = image.planes[0]
        val buffer = plane.buffer
        buffer.rewind()
        if (bytes.size != buffer.remaining()) bytes = ByteArray(buffer.remaining())
        buffer.get(bytes)
        return RgbImage(image.width, image.height, bytes, plane.pixelStride, plane.rowStride)
    }
}
