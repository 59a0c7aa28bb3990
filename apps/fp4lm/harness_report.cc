// Markdown and JSON output of the zero-shot harness (see harness_report.h).
#include "fp4lm/harness_report.h"

#include <cmath>
#include <string_view>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "nlohmann/json.hpp"

namespace fp4lm {
namespace {

using OJson = nlohmann::ordered_json;

absl::string_view Abs(std::string_view s) { return absl::string_view(s.data(), s.size()); }

std::string Basename(const std::string& path) {
  std::string p = path;
  while (p.size() > 1 && p.back() == '/') p.pop_back();
  const size_t slash = p.rfind('/');
  return slash == std::string::npos ? p : p.substr(slash + 1);
}

std::string Label(size_t i) { return absl::StrCat("[", i + 1, "]"); }

std::string Percent(const MeanStderr& m) {
  if (!std::isfinite(m.mean)) return "—";
  if (!std::isfinite(m.stderr_)) return absl::StrFormat("%.2f", 100 * m.mean);
  return absl::StrFormat("%.2f ± %.2f", 100 * m.mean, 100 * m.stderr_);
}

std::string Delta(double value, double base, const char* format) {
  if (!std::isfinite(value) || !std::isfinite(base)) return "—";
  return absl::StrFormat(format, value - base);
}

// One metric of one task across the models: the cell text and the number the gap uses.
struct Cell {
  std::string text;
  double value = NAN;
};

std::string Row(const std::vector<std::string>& cells) {
  return absl::StrCat("| ", absl::StrJoin(cells, " | "), " |\n");
}

std::string Separator(size_t n_left, size_t n_right) {
  std::vector<std::string> cells(n_left, "---");
  for (size_t i = 0; i < n_right; ++i) cells.push_back("---:");
  return Row(cells);
}

// Adds "| task | metric | n | m1 | m2 | m2-m1 | ..." rows for one metric.
void MetricRow(std::string& out, const HarnessReport& r, std::string_view task,
               std::string_view metric, const std::string& n, const std::vector<Cell>& cells,
               const char* delta_format) {
  std::vector<std::string> row = {std::string(task), std::string(metric), n};
  for (const Cell& c : cells) row.push_back(c.text);
  for (size_t m = 1; m < r.models.size(); ++m) {
    row.push_back(Delta(cells[m].value, cells[0].value, delta_format));
  }
  out += Row(row);
}

const TaskOutcome* FindOutcome(const HarnessReport& r, std::string_view name) {
  for (const TaskOutcome& t : r.tasks) {
    if (t.task.spec->name == name) return &t;
  }
  return nullptr;
}

void AverageTable(std::string& out, const HarnessReport& r, const AverageSpec& avg) {
  std::vector<std::string> header = {"Model"};
  for (const std::string_view name : avg.tasks) {
    const TaskSpec* spec = FindTask(name);
    header.push_back(std::string(spec != nullptr ? spec->display : name));
  }
  header.push_back(std::string(avg.name));
  out += Row(header);
  out += Separator(1, avg.tasks.size() + 1);
  bool partial = false;
  double base_avg = NAN;
  for (size_t m = 0; m < r.models.size(); ++m) {
    std::vector<std::string> row = {absl::StrCat(Label(m), " ", Basename(r.models[m].path))};
    double sum = 0.0;
    int present = 0;
    for (const std::string_view name : avg.tasks) {
      const TaskOutcome* t = FindOutcome(r, name);
      if (t == nullptr || m >= t->runs.size()) {
        row.push_back("—");
        continue;
      }
      const double v = AverageMetric(avg, t->runs[m].metrics);
      row.push_back(absl::StrFormat("%.2f", 100 * v));
      sum += v;
      ++present;
    }
    const size_t total = avg.tasks.size();
    const double mean = present > 0 ? sum / present : NAN;
    if (m == 0) base_avg = mean;
    std::string cell = present > 0 ? absl::StrFormat("%.2f", 100 * mean) : "—";
    if (present > 0 && static_cast<size_t>(present) < total) {
      cell = absl::StrCat(cell, "* (", present, "/", total, ")");
      partial = true;
    }
    if (m > 0 && std::isfinite(mean)) {
      cell = absl::StrCat(cell, absl::StrFormat(" (%+.2f)", 100 * (mean - base_avg)));
    }
    row.push_back(cell);
    out += Row(row);
  }
  if (partial) {
    out += "\n\\* over the tasks present only: not comparable with the papers' average.\n";
  }
}

std::string Duration(double seconds) {
  if (!std::isfinite(seconds) || seconds < 0) return "?";
  const long s = std::lround(seconds);
  if (s >= 3600) return absl::StrFormat("%dh%02dm", s / 3600, (s % 3600) / 60);
  if (s >= 60) return absl::StrFormat("%dm%02ds", s / 60, s % 60);
  return absl::StrFormat("%.1fs", seconds);
}

OJson Number(double v) { return std::isfinite(v) ? OJson(v) : OJson(nullptr); }

OJson MetricsJson(const TaskMetrics& m) {
  OJson j;
  j["n"] = m.n;
  j["acc"] = Number(m.acc.mean);
  j["acc_stderr"] = Number(m.acc.stderr_);
  if (m.has_acc_norm) {
    j["acc_norm"] = Number(m.acc_norm.mean);
    j["acc_norm_stderr"] = Number(m.acc_norm.stderr_);
  }
  if (m.has_ppl) {
    j["perplexity"] = Number(m.ppl);
    j["perplexity_stderr"] = Number(m.ppl_stderr);
  }
  return j;
}

}  // namespace

std::string FormatMarkdown(const HarnessReport& r) {
  std::string out = "## fp4lm eval: zero-shot accuracy (lm-evaluation-harness protocol)\n\n";
  for (size_t m = 0; m < r.models.size(); ++m) {
    const ModelColumn& c = r.models[m];
    std::string sink;
    if (!c.sink.empty() && c.sink != "none") {
      sink = absl::StrCat("; attention sink ", c.sink,
                          c.sink_prefix ? ", put in front of every request" : ", only after BOS");
    }
    out += absl::StrCat("- ", Label(m), " ", c.path, ": ", c.weight_format, "; requests ",
                        c.adds_bos ? "start with BOS" : "without BOS", sink, "\n");
  }
  out += absl::StrCat(
      "- items: ",
      r.limit > 0 ? absl::StrCat("the first ", r.limit, " of each task") : std::string("all"),
      "; BOS policy ", r.bos, "; log-likelihood window ", r.window,
      " tokens (left-truncated beyond)\n");
  for (const TaskOutcome& t : r.tasks) {
    const std::string count = t.task.spec->scoring == TaskScoring::kPerplexity
                                  ? std::string("text")
                                  : absl::StrCat(t.task.items.size(), " items");
    out += absl::StrCat("- ", Abs(t.task.spec->name), ": ", count, " from ", t.task.file, " (",
                        t.task.schema, ")\n");
  }
  for (const std::string& s : r.skipped) out += absl::StrCat("- skipped: ", s, "\n");
  out += "\n";

  // Per-task metrics.
  std::vector<std::string> header = {"Task", "Metric", "n"};
  for (size_t m = 0; m < r.models.size(); ++m) header.push_back(Label(m));
  for (size_t m = 1; m < r.models.size(); ++m) {
    header.push_back(absl::StrCat(Label(m), " − ", Label(0)));
  }
  out += Row(header);
  out += Separator(2, 1 + 2 * r.models.size() - 1);
  for (const TaskOutcome& t : r.tasks) {
    const std::string_view display = t.task.spec->display;
    if (t.task.spec->scoring == TaskScoring::kPerplexity) {
      if (t.perplexity.empty()) continue;
      const EvalResult& first = t.perplexity[0];
      const std::string n = absl::StrCat(first.scored_tokens, " tok");
      std::vector<Cell> ppl, kld, top1;
      for (const EvalResult& e : t.perplexity) {
        ppl.push_back({absl::StrFormat("%.3f ± %.3f", e.ppl, e.ppl_stderr), e.ppl});
        kld.push_back(e.has_reference ? Cell{absl::StrFormat("%.5f", e.kld_mean), e.kld_mean}
                                      : Cell{"—", 0.0});
        top1.push_back(e.has_reference
                           ? Cell{absl::StrFormat("%.2f", e.top1_agreement), e.top1_agreement}
                           : Cell{"—", 100.0});
      }
      MetricRow(out, r, display,
                absl::StrCat("ppl (", PplProtocolName(first.protocol), ", ctx ", first.ctx, ")"), n,
                ppl, "%+.3f");
      if (r.models.size() > 1) {
        MetricRow(out, r, display, absl::StrCat("KL vs ", Label(0), " (nats/tok)"), n, kld,
                  "%+.5f");
        MetricRow(out, r, display, absl::StrCat("top-1 agreement vs ", Label(0), " %"), n, top1,
                  "%+.2f");
      }
      continue;
    }
    if (t.runs.empty()) continue;
    const std::string n = absl::StrCat(t.runs[0].metrics.n);
    std::vector<Cell> acc, acc_norm, ppl;
    for (const TaskRun& run : t.runs) {
      acc.push_back({Percent(run.metrics.acc), run.metrics.acc.mean * 100});
      acc_norm.push_back({Percent(run.metrics.acc_norm), run.metrics.acc_norm.mean * 100});
      ppl.push_back({absl::StrFormat("%.3f ± %.3f", run.metrics.ppl, run.metrics.ppl_stderr),
                     run.metrics.ppl});
    }
    MetricRow(out, r, display, "acc", n, acc, "%+.2f");
    if (t.runs[0].metrics.has_acc_norm)
      MetricRow(out, r, display, "acc_norm", n, acc_norm, "%+.2f");
    if (t.runs[0].metrics.has_ppl) MetricRow(out, r, display, "ppl", n, ppl, "%+.3f");
  }

  for (const AverageSpec& avg : PaperAverages()) {
    out +=
        absl::StrCat("\n### ", Abs(avg.name), " (",
                     avg.prefer_acc_norm ? "acc_norm where defined, else acc" : "acc", ", %)\n\n");
    AverageTable(out, r, avg);
  }

  // Wall time per task and model.
  out += "\n### Time\n\n";
  std::vector<std::string> time_header = {"Task"};
  for (size_t m = 0; m < r.models.size(); ++m) time_header.push_back(Label(m));
  out += Row(time_header);
  out += Separator(1, r.models.size());
  for (const TaskOutcome& t : r.tasks) {
    std::vector<std::string> row = {std::string(t.task.spec->display)};
    for (size_t m = 0; m < r.models.size(); ++m) {
      if (t.task.spec->scoring == TaskScoring::kPerplexity) {
        if (m >= t.perplexity.size()) {
          row.push_back("—");
          continue;
        }
        const EvalResult& e = t.perplexity[m];
        row.push_back(absl::StrFormat("%s (%.0f window tok/s%s)", Duration(e.seconds),
                                      e.seconds > 0 ? e.windows * double(e.ctx) / e.seconds : 0.0,
                                      e.has_reference ? ", with the reference" : ""));
      } else {
        if (m >= t.runs.size()) {
          row.push_back("—");
          continue;
        }
        const TaskRun& run = t.runs[m];
        row.push_back(absl::StrFormat("%s (%.1f items/s, %.0f tok/s)", Duration(run.seconds),
                                      run.seconds > 0 ? run.items.size() / run.seconds : 0.0,
                                      run.seconds > 0 ? run.tokens_fed / run.seconds : 0.0));
      }
    }
    out += Row(row);
  }
  out += absl::StrCat("\nTotal wall time: ", Duration(r.total_seconds), "\n");
  return out;
}

std::string FormatJson(const HarnessReport& r) {
  OJson out;
  out["harness"] = "fp4lm eval (lm-evaluation-harness 0.4 zero-shot protocol)";
  OJson models = OJson::array();
  for (const ModelColumn& c : r.models) {
    models.push_back(OJson{{"path", c.path},
                           {"weight_format", c.weight_format},
                           {"tokenizer", c.tokenizer},
                           {"adds_bos", c.adds_bos},
                           {"sink", c.sink},
                           {"sink_prefix", c.sink_prefix}});
  }
  out["models"] = models;
  out["data_dir"] = r.data_dir;
  out["limit"] = r.limit;
  out["bos"] = r.bos;
  out["window"] = r.window;
  OJson tasks = OJson::array();
  for (const TaskOutcome& t : r.tasks) {
    OJson task;
    task["task"] = std::string(t.task.spec->name);
    task["file"] = t.task.file;
    task["schema"] = t.task.schema;
    if (t.task.spec->scoring == TaskScoring::kPerplexity) {
      OJson per_model = OJson::array();
      for (const EvalResult& e : t.perplexity) {
        per_model.push_back(
            OJson{{"protocol", PplProtocolName(e.protocol)},
                  {"ctx", e.ctx},
                  {"windows", e.windows},
                  {"scored_tokens", e.scored_tokens},
                  {"perplexity", Number(e.ppl)},
                  {"perplexity_stderr", Number(e.ppl_stderr)},
                  {"kld_mean_vs_first", e.has_reference ? Number(e.kld_mean) : OJson(nullptr)},
                  {"top1_agreement_vs_first",
                   e.has_reference ? Number(e.top1_agreement) : OJson(nullptr)},
                  {"seconds", e.seconds}});
      }
      task["metrics"] = per_model;
      tasks.push_back(task);
      continue;
    }
    OJson metrics = OJson::array();
    for (const TaskRun& run : t.runs) {
      OJson m = MetricsJson(run.metrics);
      m["seconds"] = run.seconds;
      m["tokens_fed"] = run.tokens_fed;
      m["truncated_requests"] = run.truncated;
      metrics.push_back(m);
    }
    task["metrics"] = metrics;
    OJson items = OJson::array();
    for (size_t i = 0; i < t.task.items.size(); ++i) {
      const TaskItem& item = t.task.items[i];
      OJson j;
      j["doc"] = item.doc;
      j["gold"] = item.gold;
      OJson requests = OJson::array();
      for (const Request& q : item.requests) {
        requests.push_back(OJson{{"context", q.context}, {"continuation", q.continuation}});
      }
      j["requests"] = requests;
      OJson ll = OJson::array(), greedy = OJson::array(), tokens = OJson::array();
      OJson pred = OJson::array(), pred_norm = OJson::array();
      for (const TaskRun& run : t.runs) {
        if (i >= run.items.size()) continue;
        const ItemResult& res = run.items[i];
        OJson l = OJson::array(), g = OJson::array(), n = OJson::array();
        for (const LoglikelihoodResult& c : res.choices) {
          l.push_back(Number(c.logprob));
          g.push_back(c.greedy);
          n.push_back(c.tokens);
        }
        ll.push_back(l);
        greedy.push_back(g);
        tokens.push_back(n);
        pred.push_back(res.pred);
        pred_norm.push_back(res.pred_norm);
      }
      j["loglikelihood"] = ll;  // [model][choice]
      j["greedy"] = greedy;
      j["continuation_tokens"] = tokens;
      j["pred"] = pred;
      j["pred_norm"] = pred_norm;
      items.push_back(j);
    }
    task["items"] = items;
    tasks.push_back(task);
  }
  out["tasks"] = tasks;
  OJson averages = OJson::array();
  for (const AverageSpec& avg : PaperAverages()) {
    OJson a;
    a["name"] = std::string(avg.name);
    OJson per_model = OJson::array();
    for (size_t m = 0; m < r.models.size(); ++m) {
      double sum = 0.0;
      int present = 0;
      OJson missing = OJson::array();
      for (const std::string_view name : avg.tasks) {
        const TaskOutcome* t = FindOutcome(r, name);
        if (t == nullptr || m >= t->runs.size()) {
          missing.push_back(std::string(name));
          continue;
        }
        sum += AverageMetric(avg, t->runs[m].metrics);
        ++present;
      }
      per_model.push_back(OJson{{"value", present > 0 ? Number(sum / present) : OJson(nullptr)},
                                {"complete", missing.empty()},
                                {"missing", missing}});
    }
    a["per_model"] = per_model;
    averages.push_back(a);
  }
  out["averages"] = averages;
  out["total_seconds"] = r.total_seconds;
  return out.dump(1, ' ', false, OJson::error_handler_t::replace);
}

}  // namespace fp4lm
