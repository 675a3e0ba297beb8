// Pure Kotlin, no Android: preprocessing, decoding, tracking, smoothing, metadata. Its tests are
// a self-contained runner over the shared golden fixture (../tests/golden), the same one pytest
// and XCTest read; the repository's pytest suite also compiles and runs it with plain kotlinc.
plugins {
    alias(libs.plugins.kotlin.jvm)
}

kotlin {
    jvmToolchain(17)
}

val goldenTest by tasks.registering(JavaExec::class) {
    description = "Checks the core against tests/golden (written by the numpy reference)."
    group = "verification"
    classpath = sourceSets["test"].runtimeClasspath
    mainClass.set("org.starpose.core.GoldenTestsKt")
    args(rootDir.resolve("../tests/golden").absolutePath)
}

tasks.named("test") { dependsOn(goldenTest) }
tasks.named("check") { dependsOn(goldenTest) }
