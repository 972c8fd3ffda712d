// The header self-containment test: each other file in this directory includes
// one public header and nothing else, so building this program is the test.
int main() { return 0; }
