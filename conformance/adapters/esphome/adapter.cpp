// p1sim conformance adapter for esphome-libs/dsmr_parser, the DSMR parser of ESPHome's `dsmr`
// component (header-only C++20). Build it with build.sh from a source checkout; see
// conformance/adapters/README.md.
//
// The case's bytes (stdin) go through PacketAccumulator with ESPHome's default
// max_telegram_length of 1500 bytes, then DsmrParser::parse into a ParsedData of every field
// ESPHome's sensors offer, as if all were configured (ESPHome's holds the configured ones; a
// telegram one of them fails to parse is dropped whole), with ESPHome's default M-Bus ids (gas 1,
// water 2). The CRC is checked
// where the meter sends one: for DSMR 2.2/3.0 and D0 push output (EasyMeter Q3D), which end with
// a bare `!`, the adapter runs with CRC checking off, as an ESPHome user sets `crc_check: false`
// for such a meter. Every field present is printed under its ObisId with the value as the
// library holds it: fixed-point values exactly (thousandths of the unit), integers, strings and
// timestamps as text. Raw and averaged fields are not decoded values and are left out.
#include "dsmr_parser/fields.h"
#include "dsmr_parser/packet_accumulator.h"
#include "dsmr_parser/parser.h"
#include <array>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <iterator>
#include <sstream>
#include <string>
#include <type_traits>

using namespace dsmr_parser;
using namespace dsmr_parser::fields;

// Every field ESPHome's sensors offer for any meter, as if all were configured.
#define ESPHOME_FIELDS \
  identification, p1_version, p1_version_be, timestamp, equipment_id, energy_delivered_lux, \
  energy_delivered_tariff1, energy_delivered_tariff2, energy_delivered_tariff3, energy_delivered_tariff4, \
  energy_returned_lux, energy_returned_tariff1, energy_returned_tariff2, energy_returned_tariff3, \
  energy_returned_tariff4, total_imported_energy, reactive_energy_delivered_tariff1, \
  reactive_energy_delivered_tariff2, reactive_energy_delivered_tariff3, reactive_energy_delivered_tariff4, \
  total_exported_energy, reactive_energy_returned_tariff1, reactive_energy_returned_tariff2, \
  reactive_energy_returned_tariff3, reactive_energy_returned_tariff4, electricity_tariff, power_delivered, \
  power_returned, reactive_power_delivered, reactive_power_returned, electricity_threshold, \
  electricity_switch_position, electricity_failures, electricity_long_failures, electricity_failure_log, \
  electricity_sags_l1, electricity_sags_l2, electricity_sags_l3, electricity_swells_l1, electricity_swells_l2, \
  electricity_swells_l3, message_short, message_long, voltage_l1, voltage_l2, voltage_l3, current_l1, \
  current_l2, current_l3, power_delivered_l1, power_delivered_l2, power_delivered_l3, power_returned_l1, \
  power_returned_l2, power_returned_l3, reactive_power_delivered_l1, reactive_power_delivered_l2, \
  reactive_power_delivered_l3, reactive_power_returned_l1, reactive_power_returned_l2, \
  reactive_power_returned_l3, apparent_delivery_power, apparent_return_power, gas_device_type, \
  gas_equipment_id, gas_equipment_id_be, gas_valve_position, gas_delivered, gas_delivered_be, \
  gas_delivered_text, water_device_type, water_equipment_id, water_valve_position, water_delivered, \
  current_fuse_l1
using Data = ParsedData<ESPHOME_FIELDS>;
// With Belgium's peak-demand sensors, which an ESPHome user configures for a Belgian meter only: on
// other meters the same codes carry other records (E.ON Hungary's 0-0:98.1.0 billing values).
using BelgianData = ParsedData<ESPHOME_FIELDS, active_energy_import_current_average_demand,
                               active_energy_import_maximum_demand_running_month,
                               active_energy_import_maximum_demand_last_13_months>;

static std::string json_str(std::string_view s) {
  std::string o = "\"";
  for (unsigned char c : s) {
    if (c == '"' || c == '\\') { o += '\\'; o += static_cast<char>(c); }
    else if (c < 0x20 || c >= 0x7f) { char b[8]; std::snprintf(b, sizeof b, "\\u%04x", c); o += b; }
    else o += static_cast<char>(c);
  }
  return o + "\"";
}

static std::string fixed(int32_t v, const char* unit) {
  char b[64];
  const char* sign = v < 0 ? "-" : "";
  long long a = v < 0 ? -static_cast<long long>(v) : v;
  std::snprintf(b, sizeof b, "{\"value\": \"%s%lld.%03lld\", \"unit\": %s}", sign, a / 1000, a % 1000,
                *unit ? json_str(unit).c_str() : "null");
  return b;
}

struct Printer {
  std::ostringstream out;
  bool first = true;
  template <typename F>
  void obj(const F&, const std::string& values) {
    const auto& id = F::id;
    if (!first) out << ", ";
    first = false;
    out << "{\"obis\": \"" << int(id.v[0]) << "-" << int(id.v[1]) << ":" << int(id.v[2]) << "." << int(id.v[3]) << "."
        << int(id.v[4]) << "\", \"values\": [" << values << "]}";
  }
  template <typename F>
  void apply(F& f) {
    if (!f.present()) return;
    using V = std::remove_reference_t<decltype(f.val())>;
    constexpr bool raw = std::is_base_of_v<RawField<F>, F>;
    if constexpr (std::is_same_v<F, identification> || raw) {
      return;  // the header is not an OBIS object; raw fields hold undecoded text
    } else if constexpr (std::is_same_v<F, active_energy_import_maximum_demand_last_13_months>) {
      return;  // an average over the months, not a value the meter sent
    } else if constexpr (std::is_same_v<V, TimestampedFixedValue>) {
      obj(f, "{\"value\": " + json_str(f.val().timestamp) + ", \"unit\": null}, " + fixed(f.val().int_val(), F::unit()));
    } else if constexpr (std::is_same_v<V, FixedValue>) {
      obj(f, fixed(f.val().int_val(), F::unit()));
    } else if constexpr (std::is_same_v<V, std::string_view>) {
      obj(f, "{\"value\": " + json_str(f.val()) + ", \"unit\": null}");
    } else {
      const char* u = F::unit();
      obj(f, "{\"value\": " + std::to_string(static_cast<long long>(f.val())) + ", \"unit\": " +
                 (*u ? json_str(u) : std::string("null")) + "}");
    }
  }
};

template <typename... Ts>
static std::string report(ParsedData<Ts...>& d) {
  Printer p;
  (p.apply(static_cast<Ts&>(d)), ...);
  return "{\"header\": " + json_str(d.identification) + ", \"objects\": [" + p.out.str() + "]}";
}

template <typename D>
static int decode(const std::string& input, bool crc) {
  static std::array<uint8_t, 1500> buffer;  // ESPHome's default max_telegram_length
  PacketAccumulator acc(buffer, crc);
  for (char c : input) {
    auto t = acc.process_byte(static_cast<uint8_t>(c));
    if (!t) continue;
    D d;
    if (!DsmrParser::parse(d, *t)) continue;  // ESPHome publishes nothing for a telegram that fails to parse
    std::cout << report(d) << "\n";
  }
  return 0;
}

int main() {
  Logger::set_log_function([](LogLevel, const char* fmt, va_list args) { std::vfprintf(stderr, fmt, args); std::fputc('\n', stderr); });
  const char* spec = std::getenv("P1SIM_SPEC");
  std::string s = spec ? spec : "";
  // Meters without a CRC: ESPHome users configure `crc_check: false` for them.
  const bool crc = !(s == "DSMR 2.2" || s == "DSMR 3.0" || s == "D0");
  std::string input((std::istreambuf_iterator<char>(std::cin)), std::istreambuf_iterator<char>());
  const bool belgian = s == "e-MUCS" || s == "Iskra IE";
  return belgian ? decode<BelgianData>(input, crc) : decode<Data>(input, crc);
}
