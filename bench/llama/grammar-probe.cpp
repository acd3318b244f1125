// grammar-probe: where the llama backend's JSON-mode generation time goes
// (bench/llama.sh builds it next to llama-bench; see docs/BENCHMARKS.md).
//
//   grammar-probe MODEL MESSAGES.json THREADS MAX_TOKENS [MODE...]
//
// MESSAGES.json is {"system": ..., "user": ...}, the framed prompt as the
// assessor's command backend receives it. Like assessor/src/judge/llama.rs:
// the model's chat template, n_ctx = n_batch = 2048, the prompt in one
// llama_decode, then one llama_decode per generated token, greedy, and the
// grammar from the verdict schema (reasons: 1-2 items of at most 80
// characters), with its keys in the order the assessor sends them. On the
// same messages (LLM_SEED fixes the nonce) `chain` writes the assessor's
// JSON-mode reply token for token. Three ways of sampling, each in a fresh context:
//
//   none    greedy only (the regex mode; runs to MAX_TOKENS or EOS)
//   chain   sampler chain [grammar, greedy] through llama_sampler_sample: the
//           grammar checks every one of the n_vocab candidates at every token
//           (what the assessor does today)
//   reject  greedy first; the grammar checks only that token and the full
//           grammar pass runs only when it is rejected (llama.cpp's own
//           common_sampler_sample with grammar_first = false, as llama-server
//           and llama-cli sample)
//
// (all three when no MODE is named). Prints one line of JSON per mode: tokens, decode and sampling time, and the
// reply, so the outputs of chain and reject can be compared (they must match).
#include "llama.h"
#include "json.h"
#include "json-schema-to-grammar.h"

#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

using clk = std::chrono::steady_clock;
static double ms_since(clk::time_point t) {
    return std::chrono::duration<double, std::milli>(clk::now() - t).count();
}

static std::string json_escape(const std::string & s) {
    std::string out;
    for (unsigned char c : s) {
        switch (c) {
            case '"': out += "\\\""; break;
            case '\\': out += "\\\\"; break;
            case '\n': out += "\\n"; break;
            default:
                if (c < 0x20) { char b[8]; snprintf(b, sizeof b, "\\u%04x", c); out += b; } else { out += (char) c; }
        }
    }
    return out;
}

int main(int argc, char ** argv) {
    if (argc < 5) {
        fprintf(stderr, "usage: %s MODEL MESSAGES.json THREADS MAX_TOKENS [none|chain|reject...]\n", argv[0]);
        return 2;
    }
    const char * model_path = argv[1];
    std::ifstream in(argv[2]);
    std::stringstream buf;
    buf << in.rdbuf();
    const auto messages = common_json::parse(buf.str());
    const std::string system = messages.at("system").get<std::string>();
    const std::string user = messages.at("user").get<std::string>();
    const int threads = std::stoi(argv[3]);
    const int max_tokens = std::stoi(argv[4]);

    // The assessor's grammar schema (verdict.rs reply_schema + llama.rs
    // verdict_grammar) as `schema.to_string()` prints it: serde_json without
    // `preserve_order` sorts object keys, so the properties come as reasons,
    // score, verdict, and so does the grammar's object (the model must write
    // "reasons" first).
    const std::string schema = R"({"additionalProperties":false,"properties":{"reasons":{"items":{"maxLength":80,"type":"string"},"maxItems":2,"minItems":1,"type":"array"},"score":{"type":"number"},"verdict":{"enum":["accept","reject"],"type":"string"}},"required":["verdict","score","reasons"],"type":"object"})";
    // PROBE_SCHEMA replaces it (to try another schema); PROBE_PRINT_GRAMMAR=1 prints the GBNF to stderr.
    const char * schema_env = getenv("PROBE_SCHEMA");
    const std::string grammar = json_schema_to_grammar(common_json::parse(schema_env ? schema_env : schema), false);
    if (getenv("PROBE_PRINT_GRAMMAR")) fprintf(stderr, "%s\n", grammar.c_str());

    llama_log_set([](ggml_log_level, const char *, void *) {}, nullptr);
    llama_backend_init();
    llama_model * model = llama_model_load_from_file(model_path, llama_model_default_params());
    if (!model) { fprintf(stderr, "cannot load %s\n", model_path); return 1; }
    const llama_vocab * vocab = llama_model_get_vocab(model);
    const int n_vocab = llama_vocab_n_tokens(vocab);

    const char * tmpl = llama_model_chat_template(model, nullptr);
    llama_chat_message chat[2] = { { "system", system.c_str() }, { "user", user.c_str() } };
    std::vector<char> formatted(8 * (system.size() + user.size()) + 1024);
    int len = llama_chat_apply_template(tmpl, chat, 2, true, formatted.data(), (int) formatted.size());
    if (len < 0 || len > (int) formatted.size()) { fprintf(stderr, "chat template failed\n"); return 1; }
    const std::string prompt(formatted.data(), len);
    std::vector<llama_token> tokens(prompt.size() + 16);
    int n = llama_tokenize(vocab, prompt.c_str(), (int) prompt.size(), tokens.data(), (int) tokens.size(),
                           llama_vocab_get_add_bos(vocab), true);
    if (n < 0) { fprintf(stderr, "tokenize failed\n"); return 1; }
    tokens.resize(n);

    std::vector<const char *> modes = { "none", "chain", "reject" };
    if (argc > 5) modes.assign(argv + 5, argv + argc);
    for (const char * mode : modes) {
        const std::string m = mode;
        llama_context_params cparams = llama_context_default_params();
        cparams.n_ctx = 2048;
        cparams.n_batch = 2048;
        cparams.n_threads = threads;
        cparams.n_threads_batch = threads;
        llama_context * ctx = llama_init_from_model(model, cparams);

        llama_sampler * greedy = llama_sampler_init_greedy();
        llama_sampler * grmr = m == "none" ? nullptr : llama_sampler_init_grammar(vocab, grammar.c_str(), "root");
        llama_sampler * chain = llama_sampler_chain_init(llama_sampler_chain_default_params());
        if (m == "chain") { llama_sampler_chain_add(chain, grmr); grmr = nullptr; }
        llama_sampler_chain_add(chain, greedy);

        std::vector<llama_token_data> cur(n_vocab);
        auto set_logits = [&](llama_token_data_array & arr) {
            const float * logits = llama_get_logits_ith(ctx, -1);
            for (int i = 0; i < n_vocab; i++) cur[i] = { i, logits[i], 0.0f };
            arr = { cur.data(), (size_t) n_vocab, -1, false };
        };

        auto t = clk::now();
        llama_batch batch = llama_batch_get_one(tokens.data(), (int) tokens.size());
        if (llama_decode(ctx, batch)) { fprintf(stderr, "prompt decode failed\n"); return 1; }
        const double prompt_ms = ms_since(t);

        double sample_ms = 0, decode_ms = 0;
        int generated = 0, full_passes = 0;
        std::string text;
        const auto gen_start = clk::now();
        llama_token id = 0;
        while (generated < max_tokens) {
            t = clk::now();
            if (m == "reject") {
                llama_token_data_array arr;
                set_logits(arr);
                llama_sampler_apply(chain, &arr);
                id = arr.data[arr.selected].id;
                llama_token_data one = { id, 1.0f, 0.0f };
                llama_token_data_array single = { &one, 1, -1, false };
                llama_sampler_apply(grmr, &single);
                if (single.data[0].logit == -INFINITY) {
                    full_passes++;
                    set_logits(arr);
                    llama_sampler_apply(grmr, &arr);
                    llama_sampler_apply(chain, &arr);
                    id = arr.data[arr.selected].id;
                }
                llama_sampler_accept(grmr, id);
                llama_sampler_accept(chain, id);
            } else {
                id = llama_sampler_sample(chain, ctx, -1);
                if (m == "chain") full_passes++;
            }
            sample_ms += ms_since(t);
            if (llama_vocab_is_eog(vocab, id)) break;
            char piece[256];
            int k = llama_token_to_piece(vocab, id, piece, sizeof piece, 0, false);
            if (k > 0) text.append(piece, k);
            generated++;
            t = clk::now();
            batch = llama_batch_get_one(&id, 1);
            if (llama_decode(ctx, batch)) { fprintf(stderr, "decode failed\n"); return 1; }
            decode_ms += ms_since(t);
        }
        const double gen_ms = ms_since(gen_start);
        printf("{\"mode\":\"%s\",\"prompt_tokens\":%d,\"prompt_ms\":%.1f,\"tokens\":%d,\"generation_ms\":%.1f,"
               "\"tokens_per_second\":%.1f,\"decode_ms\":%.1f,\"sampling_ms\":%.1f,\"sampling_ms_per_token\":%.3f,"
               "\"full_grammar_passes\":%d,\"reply\":\"%s\"}\n",
               mode, (int) tokens.size(), prompt_ms, generated, gen_ms, generated * 1000.0 / gen_ms, decode_ms,
               sample_ms, sample_ms / (generated ? generated : 1), full_passes, json_escape(text).c_str());
        fflush(stdout);
        if (grmr) llama_sampler_free(grmr);
        llama_sampler_free(chain);
        llama_free(ctx);
    }
    llama_model_free(model);
    return 0;
}
