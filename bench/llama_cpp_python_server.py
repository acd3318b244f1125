"""llama-cpp-python's server without ggml's extra buffer types: on this VM
the AMX weight repacking (ggml_backend_amx_mul_mat) dies with a general
protection fault on the first inference."""
import sys
import llama_cpp
import llama_cpp.llama_cpp as low

_default = low.llama_model_default_params

def _params():
    p = _default()
    p.use_extra_bufts = False
    return p

low.llama_model_default_params = _params
llama_cpp.llama_model_default_params = _params

from llama_cpp.server.__main__ import main

if __name__ == "__main__":
    sys.exit(main())
