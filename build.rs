//! Embeds an rpath to libtorch so binaries and tests run without LD_LIBRARY_PATH.
//!
//! torch-sys (links = "tch") exports the directory it linked against as DEP_TCH_LIBTORCH_LIB.
//! rustc links with --as-needed, which drops libtorch_cuda.so; with RNNLAB_CUDA=1 it is kept so that
//! `--device cuda` works on a machine with a CUDA build of libtorch and its runtime libraries.
//!
//! It also compiles `src/model/fused/node.cpp` against libtorch's headers: the fused recurrence's autograd node,
//! which tch's C API cannot make.
use std::path::Path;

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=RNNLAB_CUDA");
    let Ok(lib) = std::env::var("DEP_TCH_LIBTORCH_LIB") else {
        return;
    };
    println!("cargo:rustc-link-arg=-Wl,-rpath,{lib}");
    println!("cargo:rerun-if-changed=src/model/fused/node.cpp");
    println!("cargo:rerun-if-env-changed=LIBTORCH_CXX11_ABI");
    let abi = std::env::var("LIBTORCH_CXX11_ABI").unwrap_or_else(|_| "1".into());
    cc::Build::new()
        .cpp(true)
        .pic(true)
        .opt_level(2)
        // libtorch's headers warn under C++17 (bit-field initialisers); our file has nothing to say.
        .warnings(false)
        .include(Path::new(&lib).join("../include"))
        .flag("-std=c++17")
        .flag(format!("-D_GLIBCXX_USE_CXX11_ABI={abi}"))
        .flag("-DGLOG_USE_GLOG_EXPORT")
        .file("src/model/fused/node.cpp")
        .compile("rnnlab_node");
    println!("cargo:rustc-env=RNNLAB_LIBTORCH_LIB={lib}");
    let version = std::fs::read_to_string(Path::new(&lib).join("../version.py"))
        .ok()
        .and_then(|s| {
            s.lines().find_map(|l| l.strip_prefix("__version__ = ").map(|v| v.trim_matches(['\'', '"']).to_string()))
        })
        .or_else(|| std::fs::read_to_string(Path::new(&lib).join("../build-version")).ok())
        .unwrap_or_else(|| "unknown".into());
    println!("cargo:rustc-env=RNNLAB_LIBTORCH_VERSION={}", version.trim());
    if std::env::var("RNNLAB_CUDA").is_ok_and(|v| v == "1") && Path::new(&lib).join("libtorch_cuda.so").exists() {
        println!("cargo:rustc-link-arg=-Wl,--no-as-needed,-ltorch_cuda,--as-needed");
    }
}
