package org.starpose.core

import kotlin.math.floor

/** Memory order of a model's image input. */
enum class Layout { NHWC, NCHW }

/**
 * An 8-bit RGB image in a byte array, addressed by strides so that camera buffers can be used
 * as they come: CameraX RGBA_8888 frames have `pixelStride = 4` and rows padded to `rowStride`;
 * iOS BGRA frames are read with `channelOffsets = [2, 1, 0]`.
 */
class RgbImage(
    val width: Int,
    val height: Int,
    val data: ByteArray,
    val pixelStride: Int = 3,
    val rowStride: Int = width * pixelStride,
    val channelOffsets: IntArray = intArrayOf(0, 1, 2),
) {
    init {
        require(width > 0 && height > 0) { "image size must be positive, got ${width}x$height" }
        require(pixelStride >= 3 && rowStride >= width * pixelStride) { "bad strides $pixelStride/$rowStride for width $width" }
        require(data.size >= (height - 1) * rowStride + width * pixelStride) {
            "buffer of ${data.size} bytes is too small for ${width}x$height with row stride $rowStride"
        }
    }

    /** Channel [ch] (0 = R, 1 = G, 2 = B) of pixel (x, y), 0..255. */
    fun get(x: Int, y: Int, ch: Int): Int = data[y * rowStride + x * pixelStride + channelOffsets[ch]].toInt() and 0xFF
}

/**
 * Bilinear affine crop, the port of `top_down_affine` (OpenCV `warpAffine`, INTER_LINEAR,
 * constant black border): output pixel (x, y) samples the source at `imageToCrop⁻¹ (x, y)`, with
 * integer coordinates at pixel centres; neighbours outside the image count as 0. Output is uint8
 * RGB in [layout] (NHWC: `[y][x][c]`, NCHW: `[c][y][x]`). OpenCV rounds sampling positions to
 * 1/32 pixel, so results may differ from it by one level (the golden tolerance).
 */
fun warpAffineBilinear(
    src: RgbImage,
    imageToCrop: Affine,
    outW: Int,
    outH: Int,
    layout: Layout = Layout.NHWC,
    out: ByteArray = ByteArray(outW * outH * 3),
): ByteArray {
    require(out.size >= outW * outH * 3) { "output buffer too small" }
    val inv = imageToCrop.inverse()
    val plane = outW * outH
    val v = DoubleArray(3)
    for (y in 0 until outH) {
        for (x in 0 until outW) {
            val sx = inv.a * x + inv.b * y + inv.c
            val sy = inv.d * x + inv.e * y + inv.f
            val fx0 = floor(sx)
            val fy0 = floor(sy)
            val fx = sx - fx0
            val fy = sy - fy0
            val x0 = fx0.toInt()
            val y0 = fy0.toInt()
            v[0] = 0.0
            v[1] = 0.0
            v[2] = 0.0
            accumulate(src, x0, y0, (1 - fx) * (1 - fy), v)
            accumulate(src, x0 + 1, y0, fx * (1 - fy), v)
            accumulate(src, x0, y0 + 1, (1 - fx) * fy, v)
            accumulate(src, x0 + 1, y0 + 1, fx * fy, v)
            for (ch in 0 until 3) {
                val q = floor(v[ch] + 0.5).coerceIn(0.0, 255.0).toInt().toByte()
                if (layout == Layout.NHWC) out[(y * outW + x) * 3 + ch] = q else out[ch * plane + y * outW + x] = q
            }
        }
    }
    return out
}

private fun accumulate(src: RgbImage, x: Int, y: Int, w: Double, v: DoubleArray) {
    if (w == 0.0 || x < 0 || y < 0 || x >= src.width || y >= src.height) return
    val base = y * src.rowStride + x * src.pixelStride
    val o = src.channelOffsets
    v[0] += w * (src.data[base + o[0]].toInt() and 0xFF)
    v[1] += w * (src.data[base + o[1]].toInt() and 0xFF)
    v[2] += w * (src.data[base + o[2]].toInt() and 0xFF)
}

/**
 * uint8 RGB crop → float `(x - mean) / std` per channel, in float32 arithmetic like
 * `normalize_image`; input in [inLayout], output in [outLayout]. Only for artifacts whose metadata
 * says `normalization: external` (the exported bundles normalize inside the graph).
 */
fun normalizeImage(
    rgb: ByteArray,
    width: Int,
    height: Int,
    mean: DoubleArray,
    std: DoubleArray,
    inLayout: Layout = Layout.NHWC,
    outLayout: Layout = Layout.NCHW,
): FloatArray {
    val plane = width * height
    val out = FloatArray(plane * 3)
    val m = FloatArray(3) { mean[it].toFloat() }
    val s = FloatArray(3) { std[it].toFloat() }
    for (p in 0 until plane) {
        for (ch in 0 until 3) {
            val src = if (inLayout == Layout.NHWC) p * 3 + ch else ch * plane + p
            val dst = if (outLayout == Layout.NHWC) p * 3 + ch else ch * plane + p
            out[dst] = ((rgb[src].toInt() and 0xFF).toFloat() - m[ch]) / s[ch]
        }
    }
    return out
}
