// Type-checks every dashboard of dashboards/grafana against `Dashboard` from @grafana/schema (Grafana's
// own schema types) with the TypeScript compiler: each dashboard becomes an object literal of that type,
// so a missing field, a field of the wrong type or an unknown field is an error.
import { execFileSync } from "node:child_process";
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const dashboards = join(here, "..", "..", "dashboards", "grafana");
const files = readdirSync(dashboards).filter((f) => f.endsWith(".json")).sort();
if (files.length === 0) {
  console.error(`no dashboards in ${dashboards}`);
  process.exit(1);
}
let source = "import type { Dashboard } from '@grafana/schema';\n";
files.forEach((file, i) => {
  const text = readFileSync(join(dashboards, file), "utf8");
  JSON.parse(text);
  source += `// ${file}\nexport const dashboard${i}: Dashboard = ${text};\n`;
});
// Inside node_modules so that '@grafana/schema' resolves from it.
const out = join(here, "node_modules", ".cache", "glasshouse");
mkdirSync(out, { recursive: true });
const checked = join(out, "dashboards.ts");
writeFileSync(checked, source);
try {
  execFileSync(
    join(here, "node_modules", ".bin", "tsc"),
    ["--noEmit", "--strict", "--skipLibCheck", "--moduleResolution", "bundler", "--module", "esnext", "--target", "es2022", checked],
    { stdio: "inherit" },
  );
} catch {
  console.error(`dashboards do not type-check against @grafana/schema (source: ${checked})`);
  process.exit(1);
}
console.log(`${files.length} dashboards type-check against @grafana/schema`);
