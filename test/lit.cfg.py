# lit configuration for dsflow's FileCheck tests (the site config sets the paths).
import os

import lit.formats
import lit.llvm

# Paths come from the build's site config: $DSFLOW_LIT_SITE_CFG, else build/.
site_config = os.environ.get("DSFLOW_LIT_SITE_CFG") or os.path.join(
    os.path.dirname(__file__), "..", "build", "test", "lit.site.cfg.py")
if not os.path.exists(site_config):
    lit_config.fatal("no lit site config at %s: build dsflow first" % site_config)
lit_config.load_config(config, site_config)

config.name = "dsflow"
config.test_format = lit.formats.ShTest(not lit.llvm.llvm_config.use_lit_shell)
config.suffixes = [".mlir", ".test"]
config.excludes = ["Inputs", "CMakeLists.txt", "lit.cfg.py", "lit.site.cfg.py"]
config.test_source_root = os.path.dirname(__file__)
config.test_exec_root = os.path.join(config.dsflow_binary_dir, "test")

lit.llvm.llvm_config.use_default_substitutions()
config.substitutions.append(("%models", config.dsflow_models_dir))
config.substitutions.append(("%configs", os.path.join(config.dsflow_models_dir, "configs")))

# PATH gains LLVM's tools (FileCheck, not, count) and the project's build/bin.
lit.llvm.llvm_config.with_environment("PATH", config.llvm_tools_dir, append_path=True)
for tool_dir in config.dsflow_tool_dirs:
    lit.llvm.llvm_config.with_environment("PATH", tool_dir, append_path=True)

# Multi-process tests (REQUIRES: mpi) launch through OpenMPI's mpirun; CI
# containers run as root, and more ranks than cores is fine for tests.
if config.dsflow_have_mpi == "ON" and config.dsflow_mpiexec:
    config.available_features.add("mpi")
    config.substitutions.append(
        ("%mpirun", config.dsflow_mpiexec + " --allow-run-as-root --oversubscribe"))
config.substitutions.append(("%python", "/usr/bin/python3"))

# CUDA code generation (REQUIRES: nvrtc): dsflow-compile --cuda compiles with
# NVRTC; %ptxas assembles the PTX it embeds, a second check of the code.
if config.dsflow_have_nvrtc == "ON":
    config.available_features.add("nvrtc")
    config.substitutions.append(
        ("%ptxas", os.path.join(config.dsflow_cuda_root, "bin", "ptxas")))
